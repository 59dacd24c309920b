/** Every language of the invite pages, English (the default) first. */
import { de } from "./de.js";
import { en, type PageKey } from "./en.js";
import { es } from "./es.js";
import { fr } from "./fr.js";

export type { PageKey } from "./en.js";
export const PAGE_MESSAGES: Readonly<Record<string, Readonly<Record<PageKey, string>>>> = { en, de, fr, es };
