/** Public API for plugin authors and embedders. */
export type * from "./core/types.js";
export type * from "./storage/types.js";
export type {
  HttpApp,
  HttpCorsConfig,
  HttpErrorResult,
  HttpEvent,
  HttpHandler,
  HttpRequest,
  HttpResponse,
  HttpResult,
  HttpResultObject,
  HttpUrl,
} from "./http/types.js";
export { REMOVE, StorageError, NameTooLongError, StorageUnavailableError } from "./storage/types.js";
export { accountRecords } from "./core/accounts.js";
export type { AccountRecords, AuthError, AuthProvider, AuthResult } from "./core/accounts.js";
export { EventBus } from "./core/events.js";
export { Runtime } from "./core/runtime.js";
export { createRuntime } from "./create-runtime.js";
export { startServer } from "./server.js";
export { findAndLoadConfig, loadConfigFile, ConfigError } from "./core/config/index.js";
