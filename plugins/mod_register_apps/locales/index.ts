/** The built-in apps' texts in every language but English (which is in apps.ts). */
import { de } from "./de.js";
import { es } from "./es.js";
import { fr } from "./fr.js";
import type { BuiltinAppTexts } from "./types.js";

export type { AppTexts, BuiltinAppTexts } from "./types.js";
export const BUILTIN_APP_TEXTS: Readonly<Record<string, BuiltinAppTexts>> = { de, fr, es };
