export type { Config, ConfigSection, ConfigSource, LoadOptions } from "./types.js";
export { ConfigError } from "./config-error.js";
export { embeddedDefaultConfig } from "./config.js";
export { findAndLoadConfig, loadConfigFile, loadConfigString } from "./load.js";
export { AUTOLOAD_MODULES, COMPONENT_INHERITABLE_MODULES, modulesForHost } from "./modules.js";
export { ENV as PATH_ENV, SYSTEM_CONFIG, systemConfigPath, type PathDefaults, type PathOrigin } from "./system.js";
export { sameConfig } from "./same.js";
export { describeConfigSource } from "./source.js";
