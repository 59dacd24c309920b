/** Les textes des applications fournies, en français (par identifiant ; l’anglais est dans apps.ts). */
import type { BuiltinAppTexts } from "./types.js";

export const fr: BuiltinAppTexts = {
  conversations: {
    text: "Une application XMPP rapide et économe en batterie pour téléphones Android, avec chiffrement de bout en bout intégré.",
    buttons: ["Disponible sur Google Play"],
  },
  yaxim: {
    text: "Une petite application XMPP pour Android, sans fioritures, qui fonctionne bien même sur des téléphones anciens ou d’entrée de gamme.",
    buttons: ["Disponible sur Google Play"],
  },
  "siskin-im": {
    text: "Une application XMPP pour iPhone et iPad par Tigase : discussions, groupes, images et appels.",
    buttons: ["Télécharger dans l’App Store"],
  },
  "beagle-im": {
    text: "La petite sœur de Siskin IM pour Mac, également par Tigase : une application XMPP légère et complète pour macOS.",
    buttons: ["Télécharger dans le Mac App Store"],
    setup:
      "Ouvrez Beagle IM et choisissez d’ajouter un compte existant (le bouton + tant qu’aucun compte n’est configuré), puis connectez-vous avec votre nouvelle adresse et votre mot de passe.",
  },
  dino: {
    text: "Une application XMPP libre, soignée et respectueuse de la vie privée pour le bureau Linux.",
    buttons: ["Obtenir Dino"],
  },
  gajim: {
    text: "Une application XMPP libre et complète pour les bureaux Windows et Linux.",
    buttons: ["Obtenir Gajim"],
  },
  monal: {
    text: "Une application XMPP libre pour iPhone et iPad, à l’apparence simple et familière.",
    buttons: ["Télécharger dans l’App Store"],
  },
};
