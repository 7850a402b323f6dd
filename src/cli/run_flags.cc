#include "cli/run_flags.h"

#include "cli/commands.h"

namespace baton::cli {

void add_run_flags(CLI::App* cmd, RunSource& source) {
  RunSettings& f = source.flags;
  cmd->add_option("--config", source.config_path,
                  "TOML file with any of these settings as keys (listen, ready, command, ...); "
                  "flags given here override it. Read again at each reload.")
      ->type_name("FILE");
  cmd->add_option("--listen", f.listen,
                  "[NAME=]ADDRESS to listen on, repeatable: 8080, 127.0.0.1:8080, [::1]:8080, "
                  "unix:/path, udp:HOST:PORT")
      ->type_name("[NAME=]ADDR")
      ->allow_extra_args(false);  // else CLI11 reads "[::1]:80" as a list and drops the brackets
  cmd->add_option("--ready", f.ready,
                  "how a new generation proves it is ready: auto (READY=1 from an app that "
                  "speaks sd_notify; else accepting baton's probe connection on its own socket), "
                  "notify (READY=1 on NOTIFY_SOCKET), accept (accepting baton's probe "
                  "connection), http:PATH (2xx from that generation), exec:CMD (exits 0), "
                  "delay:DURATION (alive that long; weakest)")
      ->capture_default_str();
  cmd->add_option("--ready-timeout", f.ready_timeout,
                  "how long a new generation has to prove it is ready (30s, 2m, 500ms, plain "
                  "seconds), else the reload fails and it is drained and stopped")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_option("--drain-timeout", f.drain_timeout,
                  "how long an old generation has to finish, counted from the switch (watch and "
                  "drain signal together), then its process group is killed")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_option("--drain-signal", f.drain_signal, "signal that tells an old generation to drain")
      ->capture_default_str();
  cmd->add_flag("--drain-signal-group", f.drain_signal_group,
                "send the drain signal to the generation's whole process group, not only its "
                "main process: for a wrapper (a shell script without exec) that runs the server "
                "as its child. The group is then waited for until it is empty");
  cmd->add_option("--drain", f.drain,
                  "how an old generation drains after the switch. watch: baton watches it from "
                  "outside (accept queue, connections from /proc and sock_diag), closes its idle "
                  "keep-alive connections, and sends the drain signal only once it holds nothing, "
                  "for apps that die on SIGTERM; a generation whose listeners are shared with the "
                  "new one cannot be watched and is signalled at once. signal: the drain signal "
                  "at once, for apps that drain well themselves. --drain-timeout bounds both")
      ->capture_default_str();
  cmd->add_option("--hold-old", f.hold_old,
                  "how long the replaced generation is held after the switch: no new "
                  "connection, no signal; if the new generation exits meanwhile, new connections "
                  "go back to the old one at once and the reload fails (reload --wait exits 1). "
                  "0s: no hold")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_option("--max-draining", f.max_draining,
                  "reloads are refused while this many old generations still drain (1-64)")
      ->capture_default_str();
  cmd->add_option("--backlog", f.backlog, "listen(2) backlog of stream listeners")
      ->capture_default_str();
  cmd->add_flag("--ipv6-only", f.ipv6_only,
                "set IPV6_V6ONLY: [::] listeners take IPv6 only (default: IPv4 too)");
  cmd->add_option("--unix-mode", f.unix_mode, "permissions of unix socket listeners")
      ->capture_default_str();
  cmd->add_option("--control", f.control,
                  "control socket path (default: $BATON_CONTROL, else "
                  "$RUNTIME_DIRECTORY/control.sock, else /run/baton/control.sock for root, else "
                  "$XDG_RUNTIME_DIR/baton/control.sock, else /tmp/baton-UID/control.sock)");
  cmd->add_flag("--adopt", f.adopt,
                "for apps that bind their port themselves: preload libbaton_adopt.so so their "
                "bind() of a --listen address takes baton's socket instead");
  cmd->add_option("--chdir", f.chdir,
                  "absolute directory each generation starts in, looked up again at each spawn "
                  "(so a flipped current -> releases/N link takes the next reload there)")
      ->type_name("DIR");
  cmd->add_option("--env-file", f.env_file,
                  "NAME=VALUE lines added to each generation's environment, read again at each "
                  "reload")
      ->type_name("FILE");
  cmd->add_option("--env", f.env, "NAME=VALUE added to each generation's environment, repeatable")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  cmd->add_option("--user", f.user,
                  "run generations as USER[:GROUP]; baton binds the listeners (privileged ports "
                  "too) first, as root")
      ->type_name("USER[:GROUP]");
  cmd->add_option("--metrics", f.metrics,
                  "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100)")
      ->type_name("ADDR");
  cmd->add_flag("--prefix-output", f.prefix_output,
                "start each line the app writes with its generation, \"[gen 3] \" (baton's own "
                "lines carry a time, or a journal priority, and a level either way)");
  cmd->add_option("command", f.command, "the server to run, after --")
      ->type_name("-- COMMAND [ARGS...]");
  cmd->positionals_at_end();
}

void collect_given(CLI::App* cmd, RunSource& source) {
  source.given.clear();
  if (!words_after_dashes().empty()) {
    if (!source.flags.command.empty()) {
      throw CLI::ValidationError("command", "give the command once: after --");
    }
    source.flags.command = words_after_dashes();
  }
  for (const auto& key : run_setting_keys()) {
    const CLI::Option* opt = cmd->get_option_no_throw(key == "command" ? key : "--" + key);
    if (opt != nullptr && opt->count() > 0) source.given.insert(key);
  }
  if (!words_after_dashes().empty()) source.given.insert("command");
}

}  // namespace baton::cli
