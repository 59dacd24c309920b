/** Los textos de las aplicaciones incluidas, en español (por id; el inglés está en apps.ts). */
import type { BuiltinAppTexts } from "./types.js";

export const es: BuiltinAppTexts = {
  conversations: {
    text: "Una aplicación XMPP rápida y que ahorra batería, hecha para móviles Android, con cifrado de extremo a extremo integrado.",
    buttons: ["Disponible en Google Play"],
  },
  yaxim: {
    text: "Una aplicación XMPP pequeña y sencilla para Android que funciona bien incluso en móviles antiguos o básicos.",
    buttons: ["Disponible en Google Play"],
  },
  "siskin-im": {
    text: "Una aplicación XMPP para iPhone y iPad de Tigase: chats, chats de grupo, imágenes y llamadas.",
    buttons: ["Descargar en el App Store"],
  },
  "beagle-im": {
    text: "La hermana de Siskin IM para Mac, también de Tigase: una aplicación XMPP ligera y completa para macOS.",
    buttons: ["Descargar en el Mac App Store"],
    setup:
      "Abre Beagle IM y elige añadir una cuenta existente (el botón + mientras no haya ninguna cuenta configurada) y luego inicia sesión con tu nueva dirección y tu contraseña.",
  },
  dino: {
    text: "Una aplicación XMPP libre, ordenada y respetuosa con la privacidad para el escritorio Linux.",
    buttons: ["Conseguir Dino"],
  },
  gajim: {
    text: "Una aplicación XMPP libre y completa para escritorios Windows y Linux.",
    buttons: ["Conseguir Gajim"],
  },
  monal: {
    text: "Una aplicación XMPP libre para iPhone y iPad, de aspecto sencillo y familiar.",
    buttons: ["Descargar en el App Store"],
  },
};
