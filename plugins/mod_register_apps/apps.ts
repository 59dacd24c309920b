/**
 * The recommended-client list: the app record (field names are Prosody's, so `site_apps`
 * entries from an existing config work unchanged) and the built-in default list. Names, ids,
 * links, platforms and capabilities are the facts clients and configs rely on; the descriptions
 * and button texts are ours.
 */

export interface AppButton {
  /** Button label (a text button). */
  text?: string;
  /** Image URL (an image button, e.g. a store badge). */
  image?: string;
  alttext?: string;
  url: string;
  target?: string;
}

export interface App {
  /** Unique id: `id` from the config, else derived from `name` (see appId). */
  id: string;
  name: string;
  /** Short description shown on the app card. */
  text?: string;
  /** Logo URL, absolute (a relative one is made absolute against /register_apps). */
  image?: string;
  imagetext?: string;
  /** The app's home or store page. */
  link?: string;
  platforms?: string[];
  /** The app accepts `xmpp:…?register;preauth=…` URIs (XEP-0401). */
  supports_preauth_uri?: boolean;
  /** URL template (URL renderer, vars `app`, `invite`, `base_url`) that hands the invite to the app. */
  magic_link_format?: string;
  /** URL template used after web registration (vars `site_name`, `username`, `domain`, `password`, `app`). */
  login_link_format?: string;
  select_text?: string;
  download?: { text?: string; buttons?: AppButton[] };
  setup?: { text?: string };
  /** Name of the module that added the app. */
  _source?: string;
  [field: string]: unknown;
}

/** What `module.shared("register_apps/apps")` holds: the apps in order, and the same apps by id. */
export interface SharedApps {
  list: App[];
  byId: Map<string, App>;
}

/**
 * The id of an app entry: its `id`, else its name with every run of characters other than ASCII
 * letters and digits replaced by "-", lower-cased ("Siskin IM" → "siskin-im", "Converse.js" →
 * "converse-js").
 */
export function appId(app: { id?: unknown; name?: unknown }): string | undefined {
  if (typeof app.id === "string" && app.id !== "") return app.id;
  if (typeof app.id === "number") return String(app.id);
  if (typeof app.name !== "string") return undefined;
  return app.name.replace(/[^A-Za-z0-9]+/g, "-").replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

const PLAY = "https://play.google.com/store/apps/details?id=";
const TO_APP = "{app.link!}&referrer={invite.uri}";

/** The built-in list, in Prosody's order. Both Monal entries derive the id "monal": only the first is kept. */
export const DEFAULT_APPS: ReadonlyArray<Omit<App, "id">> = [
  {
    name: "Conversations",
    text: "A fast, battery-friendly XMPP app made for Android phones, with end-to-end encryption built in.",
    image: "assets/logos/conversations.svg",
    link: `${PLAY}eu.siacs.conversations`,
    platforms: ["Android"],
    supports_preauth_uri: true,
    magic_link_format: TO_APP,
    download: { buttons: [{ text: "Get it on Google Play", url: `${PLAY}eu.siacs.conversations` }] },
  },
  {
    name: "yaxim",
    text: "A small, no-frills XMPP app for Android that runs well even on old or low-end phones.",
    image: "assets/logos/yaxim.svg",
    link: `${PLAY}org.yaxim.androidclient`,
    platforms: ["Android"],
    supports_preauth_uri: true,
    magic_link_format: TO_APP,
    download: { buttons: [{ text: "Get it on Google Play", url: `${PLAY}org.yaxim.androidclient` }] },
  },
  {
    name: "Siskin IM",
    text: "An XMPP app for iPhone and iPad by Tigase: chats, group chats, pictures and calls.",
    image: "assets/logos/siskin-im.png",
    link: "https://apps.apple.com/us/app/siskin-im/id1153516838",
    platforms: ["iOS"],
    supports_preauth_uri: true,
    download: { buttons: [{ text: "Download on the App Store", url: "https://apps.apple.com/us/app/siskin-im/id1153516838", target: "_blank" }] },
  },
  {
    name: "Beagle IM",
    text: "The Mac sibling of Siskin IM, also by Tigase: a light and capable XMPP app for macOS.",
    image: "assets/logos/beagle-im.png",
    link: "https://apps.apple.com/us/app/beagle-im/id1445349494",
    platforms: ["macOS"],
    download: { buttons: [{ text: "Download on the Mac App Store", url: "https://apps.apple.com/us/app/beagle-im/id1445349494", target: "_blank" }] },
    setup: {
      text: "Open Beagle IM and choose to add an existing account (the + button when no account is set up yet), then sign in with your new address and password.",
    },
  },
  {
    name: "Dino",
    text: "A tidy, privacy-minded open-source XMPP app for the Linux desktop.",
    image: "assets/logos/dino.svg",
    link: "https://dino.im/",
    platforms: ["Linux"],
    download: { buttons: [{ text: "Get Dino", url: "https://dino.im/#download", target: "_blank" }] },
  },
  {
    name: "Gajim",
    text: "A full-featured open-source XMPP app for Windows and Linux desktops.",
    image: "assets/logos/gajim.svg",
    link: "https://gajim.org/",
    platforms: ["Windows", "Linux"],
    download: { buttons: [{ text: "Get Gajim", url: "https://gajim.org/download/", target: "_blank" }] },
  },
  {
    name: "Monal",
    text: "An open-source XMPP app for iPhone and iPad with a simple, familiar look.",
    image: "assets/logos/monal.svg",
    link: "https://monal-im.org/",
    platforms: ["iOS"],
    supports_preauth_uri: true,
    download: { buttons: [{ text: "Download on the App Store", url: "https://apps.apple.com/app/id317711500", target: "_blank" }] },
  },
  {
    name: "Monal",
    text: "An open-source XMPP app for the Mac with a simple, familiar look.",
    image: "assets/logos/monal.svg",
    link: "https://monal-im.org/",
    platforms: ["macOS"],
    supports_preauth_uri: true,
    download: { buttons: [{ text: "Download on the Mac App Store", url: "https://apps.apple.com/app/id1637078500", target: "_blank" }] },
  },
];
