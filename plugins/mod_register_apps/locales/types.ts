/** A built-in app's own texts in one language: its description, its download buttons' labels (in order), its setup text. */
export interface AppTexts {
  text: string;
  buttons: string[];
  setup?: string;
}

/** One language's texts of the built-in apps, by app id (English is in apps.ts, the apps themselves). */
export type BuiltinAppTexts = Readonly<Record<string, AppTexts>>;
