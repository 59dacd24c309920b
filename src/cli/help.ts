/** prosodyctl's help listing: Prosody's header lines and layout, with the commands this host has. */
const SECTIONS: Array<[string, Array<[string, string]>]> = [
  [
    "Process management:",
    [
      ["start", "Start the server in the foreground (stop it with Ctrl-C or SIGTERM, reload with SIGHUP)"],
      ["stop", "Stop a running server (the one named by the pidfile)"],
      ["restart", "Restart a running server (started again in the background)"],
      ["reload", "Reload the server's configuration and re-open log files"],
      ["status", "Reports the running status of the server"],
    ],
  ],
  [
    "User management:",
    [
      ["adduser JID", "Create the specified user account in Prosody"],
      ["passwd JID", "Set the password for the specified user account in Prosody"],
      ["deluser JID", "Permanently remove the specified user account from Prosody"],
    ],
  ],
  ["Storage:", [["storage recover-journal", "Salvage an SQLite database our processes refuse (damaged journal, file changed by another program)"]]],
  ["Plugin management:", [["mod_<name>", "Run the command of a plugin, e.g. mod_invites_api create example.com"]]],
  ["Running server:", [["shell", "Run a command in the running server, e.g. shell invite list example.com (shell alone lists them)"]]],
  [
    "Informative:",
    [
      ["about", "Show every path this host uses (config, data, certificates, plugins) and where it came from"],
      ["check", "Perform basic checks on the config, modules, paths and certificates (check config|modules|paths|certs|disabled)"],
    ],
  ],
];

export function helpText(argv0: string): string {
  const lines = ["prosodyctl - Manage a Prosody server", "", `Usage: ${argv0} COMMAND [OPTIONS]`, "", "Where COMMAND may be one of:"];
  for (const [title, cmds] of SECTIONS) {
    lines.push("", title);
    for (const [name, desc] of cmds) lines.push(` ${name.padEnd(11)}    ${desc}`);
  }
  lines.push(
    "",
    "Options (before COMMAND): --config FILE, --embedded-config, -v/--verbose, --quiet, --silent, --root, -h/--help, --version",
    "Config: --config FILE, else $PROSODY_CONFIG, else ./prosody.cfg.lua, else /etc/prosody/prosody.cfg.lua",
    "($PROSODY_TS_SYSTEM_CONFIG), else the embedded default (--embedded-config: that one, without searching).",
    "",
  );
  return lines.join("\n");
}
