"""``mlk completion bash|zsh|fish``: a shell completion script, generated from the parser.

The script is static: the command tree (commands, verbs, options, which options take a
value and their choices) is written into it, so completing costs no Python start. Each
shell finds the command path typed so far (``mlk data add``) by walking the words before
the cursor, skipping options and their values, then offers that path's verbs, options or
an option's choices; anything else (a file, a reference) falls back to file names.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

SHELLS = ("bash", "zsh", "fish")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script for bash, zsh or fish",
        description="Print a completion script for mlk. Load it in the current shell, or "
        "save it where your shell reads completions (see docs/cli.md).",
        epilog="example: mlk completion bash > ~/.local/share/bash-completion/completions/mlk",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(func=_completion)


@dataclass
class Node:
    """One command path of the tree, e.g. ``mlk data add``."""

    path: str
    help: str = ""
    commands: dict[str, str] = field(default_factory=dict)  # verb -> its help
    words: list[str] = field(default_factory=list)  # choices of positional arguments
    flags: list[str] = field(default_factory=list)  # options taking no value
    values: dict[str, list[str]] = field(default_factory=dict)  # option -> its choices
    helps: dict[str, str] = field(default_factory=dict)  # option -> its help


def tree(parser: argparse.ArgumentParser) -> list[Node]:
    """Every command path of ``parser`` with its verbs and options, root first."""
    nodes: list[Node] = []

    def walk(p: argparse.ArgumentParser, path: str, help_text: str) -> None:
        node = Node(path, help_text)
        nodes.append(node)
        children: list[tuple[str, argparse.ArgumentParser, str]] = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help or "" for a in action._choices_actions}
                for name, child in action.choices.items():
                    node.commands[name] = helps.get(name, "")
                    children.append((name, child, helps.get(name, "")))
            elif not action.option_strings and action.choices:
                node.words.extend(str(c) for c in action.choices)
            for option in action.option_strings:
                node.helps[option] = action.help or ""
                if action.nargs == 0:
                    node.flags.append(option)
                else:
                    node.values[option] = [str(c) for c in action.choices or ()]
        for name, child, child_help in children:
            walk(child, f"{path} {name}", child_help)

    walk(parser, parser.prog, parser.description or "")
    return nodes


def _words(items: list[str]) -> str:
    return " ".join(items)


def _quote(text: str) -> str:
    """``text`` as one single-quoted fish word (fish reads ``\\'`` and ``\\\\`` in them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lookups(nodes: list[Node]) -> str:
    """The shared lookup functions (POSIX ``case``; bash and zsh read them alike)."""
    subs, words, opts, takes, choices = [], [], [], [], []
    for n in nodes:
        if n.commands:
            subs.append(f'    "{n.path}") echo "{_words(list(n.commands))}" ;;')
        if n.words:
            words.append(f'    "{n.path}") echo "{_words(n.words)}" ;;')
        opts.append(f'    "{n.path}") echo "{_words([*n.flags, *n.values])}" ;;')
        for option, values in n.values.items():
            takes.append(f'"{n.path}|{option}"')
            if values:
                choices.append(f'    "{n.path}|{option}") echo "{_words(values)}" ;;')
    return "\n".join(
        [
            "_mlk_commands() {",
            '  case "$1" in',
            *subs,
            "  esac",
            "}",
            "_mlk_words() {",
            '  case "$1" in',
            *words,
            "  esac",
            "}",
            "_mlk_options() {",
            '  case "$1" in',
            *opts,
            "  esac",
            "}",
            "_mlk_takes_value() {",
            '  case "$1|$2" in',
            f"    {'|'.join(takes) or '__none__'}) return 0 ;;",
            "  esac",
            "  return 1",
            "}",
            "_mlk_choices() {",
            '  case "$1|$2" in',
            *choices,
            "  esac",
            "}",
        ]
    )


# The walk over the words before the cursor, the same in bash and zsh: $1.. are the words.
_WALK = """\
_mlk_walk() {
  # sets _mlk_path (the command path) and _mlk_skip (1: the last word wants a value)
  local word subs
  _mlk_path=mlk
  _mlk_skip=0
  _mlk_rest=0
  for word in "$@"; do
    if [ "$_mlk_skip" = 1 ]; then _mlk_skip=0; continue; fi
    if [ "$word" = "--" ]; then _mlk_rest=1; return; fi
    case "$word" in
      -*) if _mlk_takes_value "$_mlk_path" "$word"; then _mlk_skip=1; fi; continue ;;
    esac
    subs=" $(_mlk_commands "$_mlk_path") "
    case "$subs" in
      *" $word "*) _mlk_path="$_mlk_path $word" ;;
    esac
  done
}
_mlk_candidates() {
  # $1: the word being completed, $2: the word before it; prints candidates, or nothing
  # (then the shell completes file names)
  if [ "$_mlk_rest" = 1 ]; then return; fi
  if [ "$_mlk_skip" = 1 ]; then _mlk_choices "$_mlk_path" "$2"; return; fi
  case "$1" in
    -*) _mlk_options "$_mlk_path" ;;
    *) _mlk_commands "$_mlk_path"; _mlk_words "$_mlk_path" ;;
  esac
}"""


def bash(parser: argparse.ArgumentParser) -> str:
    return "\n".join(
        [
            "# mlk completion for bash: source <(mlk completion bash)",
            _lookups(tree(parser)),
            _WALK,
            "_mlk() {",
            '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" found',
            '  _mlk_walk "${COMP_WORDS[@]:1:COMP_CWORD-1}"',
            '  found="$(_mlk_candidates "$cur" "$prev")"',
            "  COMPREPLY=()",
            '  if [ -n "$found" ]; then',
            '    COMPREPLY=($(compgen -W "$found" -- "$cur"))',
            "  fi",
            "}",
            "complete -o default -o bashdefault -F _mlk mlk",
            "",
        ]
    )


def zsh(parser: argparse.ArgumentParser) -> str:
    return "\n".join(
        [
            "#compdef mlk",
            "# mlk completion for zsh: source <(mlk completion zsh), after compinit",
            _lookups(tree(parser)),
            _WALK,
            "_mlk() {",
            "  local found",
            '  _mlk_walk "${(@)words[2,CURRENT-1]}"',
            '  found="$(_mlk_candidates "${words[CURRENT]}" "${words[CURRENT-1]}")"',
            '  if [ -n "$found" ]; then',
            "    compadd -- ${=found}",
            "  else",
            "    _files",
            "  fi",
            "}",
            "# autoloaded from $fpath (the file _mlk), the first call completes too",
            'if [ "${funcstack[1]}" = _mlk ]; then _mlk "$@"; else compdef _mlk mlk; fi',
            "",
        ]
    )


def fish(parser: argparse.ArgumentParser) -> str:
    nodes = tree(parser)
    lines = [
        "# mlk completion for fish: mlk completion fish | source",
        "# (or save it as ~/.config/fish/completions/mlk.fish)",
        "set -g __mlk_paths " + " ".join(_quote(n.path) for n in nodes),
        "set -g __mlk_value_options "
        + " ".join(_quote(f"{n.path}|{o}") for n in nodes for o in n.values),
        "function __mlk_path",
        "    set -l words (commandline -opc)",
        "    set -l p mlk",
        "    set -l skip 0",
        "    for w in $words[2..-1]",
        "        if test $skip = 1",
        "            set skip 0",
        "            continue",
        "        end",
        '        if test "x$w" = x--',
        "            printf '%s\\n' --",
        "            return",
        "        end",
        "        if string match -q -- '-*' $w",
        '            if contains -- "$p|$w" $__mlk_value_options',
        "                set skip 1",
        "            end",
        "            continue",
        "        end",
        '        if contains -- "$p $w" $__mlk_paths',
        '            set p "$p $w"',
        "        end",
        "    end",
        "    printf '%s\\n' \"$p\"",
        "end",
        "complete -c mlk -e",
    ]
    for n in nodes:
        at = f"-n {_quote(f'test (__mlk_path) = {_quote(n.path)}')}"
        if n.commands:
            lines.append(f"complete -c mlk -f {at}")
        if n.words:
            lines.append(f"complete -c mlk -f {at} -a {_quote(' '.join(n.words))}")
        for name, text in n.commands.items():
            lines.append(f"complete -c mlk {at} -a {_quote(name)} -d {_quote(text)}")
        for option in [*n.flags, *n.values]:
            if option.startswith("--"):
                spec = f"-l {option[2:]}"
            else:
                spec = f"-s {option[1:]}" if len(option) == 2 else f"-o {option[1:]}"
            if option in n.values:
                choices = n.values[option]
                spec += f" -x -a {_quote(' '.join(choices))}" if choices else " -r"
            lines.append(f"complete -c mlk {at} {spec} -d {_quote(n.helps[option])}")
    return "\n".join([*lines, ""])


def _completion(args: argparse.Namespace) -> int:
    import sys

    from mlkernel.cli.main import build_parser

    make = {"bash": bash, "zsh": zsh, "fish": fish}[args.shell]
    sys.stdout.write(make(build_parser()))
    return 0
