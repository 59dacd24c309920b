/** Utilities for plugins (Prosody's util.* libraries), imported as "prosody-ts/util". */
export { id, uuid, now, b64urlRandom } from "./id.js";
export { nodeprep, nameprep } from "./stringprep.js";
