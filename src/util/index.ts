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
export { createApiRouter, apiError, schemaErrorField, API_ERROR_SCHEMA, type ApiRoute, type ApiReply, type ApiInput, type ApiResponseDef, type ApiRouter, type ApiAuthorize, type ApiAllows, type ApiScope, type ApiMethod, type ApiErrorBody, type JsonSchema } from "../http/json-api.js";
export { openApiDocument, type OpenApiInfo } from "../http/openapi.js";
export { parseDuration } from "./duration.js";
export { RateLimiter, addressBucket, rateOption, parseRate, formatRate, limitRequest, rateLimitHeaders, type Rate, type RateDecision, type RateCheck, type RateLimiterOptions, type RateOptionSource } from "./rate-limit.js";
export { loadCatalog, matchLanguage, shapeOf, type Catalog, type LanguageChoice, type Messages, type MessageShape, type MessageValues, type TagFunction } from "./i18n.js";
