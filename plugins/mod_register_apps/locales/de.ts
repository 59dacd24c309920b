/** Die Texte der mitgelieferten Apps auf Deutsch (nach App-ID; Englisch steht in apps.ts). */
import type { BuiltinAppTexts } from "./types.js";

export const de: BuiltinAppTexts = {
  conversations: {
    text: "Eine schnelle, akkuschonende XMPP-App für Android-Handys, mit eingebauter Ende-zu-Ende-Verschlüsselung.",
    buttons: ["Jetzt bei Google Play"],
  },
  yaxim: {
    text: "Eine kleine, schlichte XMPP-App für Android, die auch auf alten oder einfachen Handys gut läuft.",
    buttons: ["Jetzt bei Google Play"],
  },
  "siskin-im": {
    text: "Eine XMPP-App für iPhone und iPad von Tigase: Chats, Gruppenchats, Bilder und Anrufe.",
    buttons: ["Laden im App Store"],
  },
  "beagle-im": {
    text: "Das Mac-Gegenstück zu Siskin IM, ebenfalls von Tigase: eine schlanke, leistungsfähige XMPP-App für macOS.",
    buttons: ["Laden im Mac App Store"],
    setup:
      "Öffne Beagle IM und füge ein bestehendes Konto hinzu (mit der Schaltfläche +, solange noch kein Konto eingerichtet ist), dann melde dich mit deiner neuen Adresse und deinem Passwort an.",
  },
  dino: {
    text: "Eine aufgeräumte, datenschutzbewusste quelloffene XMPP-App für den Linux-Desktop.",
    buttons: ["Dino holen"],
  },
  gajim: {
    text: "Eine vielseitige quelloffene XMPP-App für Windows- und Linux-Desktops.",
    buttons: ["Gajim holen"],
  },
  monal: {
    text: "Eine quelloffene XMPP-App für iPhone und iPad mit schlichter, vertrauter Oberfläche.",
    buttons: ["Laden im App Store"],
  },
};
