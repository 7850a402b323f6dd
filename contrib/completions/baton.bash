# bash completion for baton(1)
_baton() {
  local cur prev words cword
  _init_completion -n = || return
  local commands="run check reload status stop soak"
  local run_opts="--config --listen --ready --ready-timeout --drain-timeout --drain-signal
    --max-draining --backlog --ipv6-only --unix-mode --control --adopt --chdir --env-file --env
    --user --metrics --help"
  local ctl_opts="--control --timeout --help"
  local soak_opts="--url --connections --threads --duration --requests --close --rate --timeout
    --connect-timeout --reloads --reload-cmd --control --verify-header --reload-timeout --window
    --no-retry --max-failures --json --svg --header --quiet --help"

  if ((cword == 1)); then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return
  fi
  local i
  for ((i = 2; i < cword; i++)); do
    if [[ ${words[i]} == -- ]]; then  # the command to run: complete it as a command line
      _command_offset $((i + 1))
      return
    fi
  done
  case $prev in
    --config | --env-file | --json | --svg) _filedir; return ;;
    --chdir) _filedir -d; return ;;
    --control) _filedir sock; return ;;
    --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    --drain-signal) COMPREPLY=($(compgen -W "TERM QUIT INT HUP USR1 USR2 WINCH" -- "$cur")); return ;;
    --ready) COMPREPLY=($(compgen -W "notify http:/ exec: delay:" -- "$cur")); compopt -o nospace; return ;;
    --listen | --ready-timeout | --drain-timeout | --max-draining | --backlog | --unix-mode | \
      --env | --metrics | --timeout | --url | --connections | --threads | --duration | \
      --requests | --rate | --connect-timeout | --reloads | --reload-cmd | --verify-header | \
      --reload-timeout | --window | --max-failures | --header) return ;;
  esac
  case ${words[1]} in
    run | check) COMPREPLY=($(compgen -W "$run_opts --" -- "$cur")) ;;
    reload) COMPREPLY=($(compgen -W "$ctl_opts --wait" -- "$cur")) ;;
    status) COMPREPLY=($(compgen -W "$ctl_opts --json --check" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "$ctl_opts" -- "$cur")) ;;
    soak) COMPREPLY=($(compgen -W "$soak_opts" -- "$cur")) ;;
  esac
}
complete -F _baton baton
