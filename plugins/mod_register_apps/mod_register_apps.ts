/**
 * mod_register_apps: the list of recommended XMPP apps that the invite pages show
 * (prosody-modules' mod_register_apps), and their logos at `GET /register_apps/assets/*`.
 *
 * Options: `site_apps` (a list of app tables; replaces the built-in list), `site_apps_show`
 * (only these ids), `site_apps_hide` (never these ids). Apps may also be added at run time as
 * `site-app-provider` items. Other modules read the list with `module.shared("register_apps/apps")`
 * (a SharedApps: `list` in order and `byId`), or call `getApps()` / `getApp(id)` on
 * `await module.depends("register_apps")`.
 *
 * The built-in list's own texts (descriptions, download button labels, setup text) also exist in
 * German, French and Spanish (locales/): `localize(app, lang)` gives a page's language's copy.
 * Apps from `site_apps` or `site-app-provider` are shown as given, in every language.
 *
 * As in Prosody, the first app with a given id wins, so of the two built-in "Monal" entries only
 * the iOS one is listed. Differences (deliberate): an app without `image` gets the generic logo
 * (Prosody fails to load), one without `name` and `id` is skipped with a warning (Prosody fails).
 */
import type { ItemEvent, Module, OptionValue } from "prosody-ts";
import { appId, DEFAULT_APPS, type App, type SharedApps } from "./apps.js";
import { serveFiles } from "prosody-ts/util";
import { BUILTIN_APP_TEXTS, type AppTexts } from "./locales/index.js";
import { logoAssets } from "./logos.js";

export type { App, AppButton, SharedApps } from "./apps.js";
export { appId } from "./apps.js";

// `depends("register_apps")` is typed for every module (declaration merging).
declare module "prosody-ts" {
  interface ModuleExports {
    register_apps: RegisterAppsApi;
  }
}

export interface RegisterAppsApi {
  getApps(): App[];
  getApp(id: string): App | undefined;
  /**
   * `app` for a page in `lang`: a built-in app as a copy with its texts in that language (when
   * there are any), any other app (and any app in English) as it is.
   */
  localize<T extends object>(app: T, lang: string): T;
}

const GENERIC_LOGO = "assets/logos/generic.svg";
const ABSOLUTE = /^[A-Za-z0-9]+:\/\//;

export default async function (module: Module): Promise<void> {
  const serving = module.server.processType === "server";
  if (serving) await module.depends("http");

  const baseUrl = module.httpUrl();
  const show = module.getOptionSet("site_apps_show");
  const hide = module.getOptionSet("site_apps_hide");
  const shared = module.shared<SharedApps>("apps");
  shared.list ??= [];
  shared.byId ??= new Map();

  const absolute = (url: string) => (ABSOLUTE.test(url) ? url : `${baseUrl}/${url}`);
  // The apps of the built-in list (not those of site_apps or providers): only they have translations.
  const builtin = new WeakSet<object>();

  const addApp = (entry: unknown, fromBuiltinList = false): void => {
    if (!isRecord(entry)) {
      module.log("warn", "Ignoring an app entry that is not a table: %s", entry);
      return;
    }
    const id = appId(entry);
    if (id === undefined) {
      module.log("warn", "Ignoring an app entry with neither 'id' nor 'name'");
      return;
    }
    if ((show && !show.has(id)) || hide?.has(id) || shared.byId.has(id)) return;
    const app = copy(entry) as App;
    app.id = id;
    if (typeof app.name !== "string") app.name = id;
    app.image = absolute(typeof app.image === "string" ? app.image : GENERIC_LOGO);
    app._source = module.name;
    if (fromBuiltinList) builtin.add(app);
    shared.byId.set(id, app);
    shared.list.push(app);
  };

  const removeApp = (entry: unknown): void => {
    const id = isRecord(entry) ? appId(entry) : undefined;
    if (id === undefined) return;
    for (let i = shared.list.length - 1; i >= 0; i--) if (shared.list[i]!.id === id) shared.list.splice(i, 1);
    shared.byId.delete(id);
  };

  const configured = configuredApps(module);
  for (const entry of configured) addApp(entry, configured === DEFAULT_APPS);

  module.handleItems<Record<string, unknown>>(
    "site-app-provider",
    (event: ItemEvent<Record<string, unknown>>) => {
      module.log("info", "Adding app %s", event.item?.name ?? event.item?.id);
      addApp(event.item);
    },
    (event: ItemEvent<Record<string, unknown>>) => removeApp(event.item),
  );

  module.exports.getApps = (): App[] => [...shared.list];
  module.exports.getApp = (id: string): App | undefined => shared.byId.get(id);
  module.exports.localize = <T extends object>(app: T, lang: string): T => {
    const texts = builtin.has(app) ? BUILTIN_APP_TEXTS[lang]?.[(app as App).id] : undefined;
    return texts ? (withTexts(app as App, texts) as T) : app;
  };

  module.onUnload(() => {
    for (const app of [...shared.list]) if (app._source === module.name) removeApp(app);
  });

  if (serving) {
    module.provides("http", {
      route: { "GET /assets/*": serveFiles(logoAssets()) },
    });
  }
}

// --- Internal helpers ---

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deep copy of plain tables (the config's own tables are left untouched). */
function copy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copy);
  if (isRecord(v) && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
  }
  return v;
}

/** A copy of `app` with `texts` in place of its description, button labels and setup text. */
function withTexts(app: App, texts: AppTexts): App {
  const out: App = { ...app, text: texts.text };
  if (app.download) {
    out.download = { ...app.download, buttons: app.download.buttons?.map((b, i) => ({ ...b, text: texts.buttons[i] ?? b.text })) };
  }
  if (texts.setup !== undefined) out.setup = { ...app.setup, text: texts.setup };
  return out;
}

/** `site_apps` when set (a list; a table that is not a list holds no apps), else the built-in list. */
function configuredApps(module: Module): unknown[] {
  const value: OptionValue | undefined = module.getOption("site_apps");
  if (value === undefined) return DEFAULT_APPS as unknown[];
  if (Array.isArray(value)) return value;
  if (typeof value !== "object") module.log("error", "Config option 'site_apps' must be a list of app tables");
  return [];
}
