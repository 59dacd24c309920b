/** Utilities for plugins (Prosody's util.* libraries), imported as "prosody-ts/util". */
export { id, uuid, now, b64urlRandom } from "./id.js";
export { nodeprep, nameprep, PREP_MAX_BYTES } from "./stringprep.js";
export { createRenderer, createHtmlRenderer, createUrlRenderer, xmlEscape, urlencode, classname, asciiLower, luaToString, type Renderer, type RendererOptions, type Filter, type TemplateValues } from "./interpolation.js";
export { saslprep, scramSha1Record, scramRecord, scramKeys, verifyScramPassword, isScramRecord, scramHashFromOption, ScramError, DEFAULT_ITERATIONS, type ScramRecord, type ScramHash, type ScramKeys, type ScramOptions } from "./scram.js";
export { serveFiles, type FileEntry } from "./http-files.js";
export { formdecode, urldecode } from "./form.js";
export { cachedPromise } from "./cached-promise.js";
export { secretHint } from "./secret-hint.js";
export { SECRET_PAGE_HEADERS } from "./http-headers.js";
export { loadCatalog, matchLanguage, shapeOf, type Catalog, type LanguageChoice, type Messages, type MessageShape, type MessageValues, type TagFunction } from "./i18n.js";
