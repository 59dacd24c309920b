/** Every language of the register form and its result pages, English (the default) first. */
import { de } from "./de.js";
import { en, type RegisterKey } from "./en.js";
import { es } from "./es.js";
import { fr } from "./fr.js";

export type { RegisterKey } from "./en.js";
export const REGISTER_MESSAGES: Readonly<Record<string, Readonly<Record<RegisterKey, string>>>> = { en, de, fr, es };
