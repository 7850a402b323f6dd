# bash completion for baton(1)
# Uses the bash-completion package's helpers where it is installed, plain compgen otherwise.
_baton() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n = || return
  else
    words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  fi
  _baton_files() {  # [-d]
    if declare -F _filedir >/dev/null; then _filedir "$@"; return; fi
    COMPREPLY=($(compgen "${1:--f}" -- "$cur"))
  }
  local commands="run check reload status stop upgrade soak"
  local run_opts="--config --listen --ready --ready-timeout --drain-timeout --drain-signal
    --drain-signal-group --drain --max-draining --hold-old --backlog --ipv6-only --unix-mode
    --control --adopt --chdir --env-file --env
    --user --metrics --prefix-output --help"
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
      if declare -F _command_offset >/dev/null; then
        _command_offset $((i + 1))
      elif ((cword == i + 1)); then
        COMPREPLY=($(compgen -c -- "$cur"))
      else
        COMPREPLY=($(compgen -f -- "$cur"))
      fi
      return
    fi
  done
  case $prev in
    --config | --env-file | --json | --svg | --control) _baton_files; return ;;
    --chdir) _baton_files -d; return ;;
    --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    --drain-signal) COMPREPLY=($(compgen -W "TERM QUIT INT HUP USR1 USR2 WINCH" -- "$cur")); return ;;
    --ready) COMPREPLY=($(compgen -W "auto accept notify http:/ exec: delay:" -- "$cur")); return ;;
    --drain) COMPREPLY=($(compgen -W "watch signal" -- "$cur")); return ;;
    --listen | --ready-timeout | --drain-timeout | --max-draining | --hold-old | --canary | --canary-for | --backlog | --unix-mode | \
      --env | --metrics | --timeout | --url | --connections | --threads | --duration | \
      --requests | --rate | --connect-timeout | --reloads | --reload-cmd | --verify-header | \
      --reload-timeout | --window | --max-failures | --header) return ;;
  esac
  case ${words[1]} in
    run | check) COMPREPLY=($(compgen -W "$run_opts --" -- "$cur")) ;;
    reload) COMPREPLY=($(compgen -W "$ctl_opts --wait --canary --canary-for" -- "$cur")) ;;
    status) COMPREPLY=($(compgen -W "$ctl_opts --json --check" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "$ctl_opts" -- "$cur")) ;;
    upgrade) COMPREPLY=($(compgen -W "$ctl_opts --wait" -- "$cur")) ;;
    soak) COMPREPLY=($(compgen -W "$soak_opts" -- "$cur")) ;;
  esac
}
complete -F _baton baton
