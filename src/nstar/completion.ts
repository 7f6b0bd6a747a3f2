/**
 * Shell completion scripts for bash, zsh and fish, generated from a description of nstar's
 * command line (made from the commander program, so the scripts always match it). They
 * complete subcommands, their aliases, options, option values with fixed choices, files
 * for file arguments and, by asking the runtime (`nstar --format json list`, with the `-u`
 * of the command line being completed), container names for `name[:version]` arguments.
 */

import { constants as osConstants } from 'node:os';

export type ArgKind = 'container' | 'file' | 'signal' | 'other';

/** Signal names for `kill NAME <TAB>`: SIGHUP, SIGINT, … (os.constants.signals, by number). */
export const SIGNAL_NAMES: readonly string[] = Object.entries(osConstants.signals)
  .sort(([a, x], [b, y]) => x - y || a.localeCompare(b))
  .map(([name]) => name);

export interface OptionSpec {
  short?: string;
  long?: string;
  description: string;
  /** Value placeholder when the option takes a value. */
  value?: string;
  choices?: readonly string[];
  file?: boolean;
}

export interface ArgSpec {
  name: string;
  kind: ArgKind;
  variadic: boolean;
}

export interface CommandSpec {
  name: string;
  aliases: readonly string[];
  description: string;
  options: readonly OptionSpec[];
  args: readonly ArgSpec[];
}

export interface ProgramSpec {
  name: string;
  options: readonly OptionSpec[];
  commands: readonly CommandSpec[];
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export function completionScript(shell: Shell, spec: ProgramSpec): string {
  switch (shell) {
    case 'bash':
      return bashScript(spec);
    case 'zsh':
      return zshScript(spec);
    case 'fish':
      return fishScript(spec);
  }
}

const flags = (o: OptionSpec): string[] => [o.short ? `-${o.short}` : undefined, o.long ? `--${o.long}` : undefined].filter((x): x is string => x !== undefined);
const valued = (opts: readonly OptionSpec[]): string[] => opts.filter((o) => o.value !== undefined).flatMap(flags);
/** Single-quoted for sh-like shells. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const fn = (spec: ProgramSpec): string => spec.name.replace(/[^A-Za-z0-9_]/g, '_');

// The containers of the runtime the command line talks to: `name:version` lines.
const SED_CONTAINERS = `sed -n 's/^ *"container": "\\(.*\\)",\\{0,1\\}$/\\1/p'`;

function bashScript(spec: ProgramSpec): string {
  const f = fn(spec);
  const all = (cmd: CommandSpec): string => [cmd.name, ...cmd.aliases].join('|');
  const words = [...spec.options.flatMap(flags), ...spec.commands.flatMap((c) => [c.name, ...c.aliases])].join(' ');
  const valueCase = (opts: readonly OptionSpec[], indent: string): string =>
    opts
      .filter((o) => o.value !== undefined)
      .map((o) => {
        const body = o.choices ? `COMPREPLY=($(compgen -W ${sq(o.choices.join(' '))} -- "$cur"))` : o.file ? 'COMPREPLY=($(compgen -f -- "$cur"))' : 'COMPREPLY=()';
        return `${indent}${flags(o).join('|')}) ${body}; return 0 ;;`;
      })
      .join('\n');
  const cmdCases = spec.commands
    .map((c) => {
      const optWords = c.options.flatMap(flags).join(' ');
      const pos = c.args[0];
      let positional = 'COMPREPLY=()';
      const containers = `COMPREPLY=($(compgen -W "$(_${f}_containers)" -- "$cur"))`;
      const signalIndex = c.args.findIndex((a) => a.kind === 'signal');
      if (signalIndex > 0) {
        // The argument's position: the words after the command that are neither options nor their values.
        const skip = valued(c.options);
        const signals = `if [[ -z "$cur" ]]; then COMPREPLY=($(compgen -W ${sq(SIGNAL_NAMES.join(' '))})); else COMPREPLY=($(compgen -W ${sq([...SIGNAL_NAMES, ...SIGNAL_NAMES.map((n) => n.slice(3))].join(' '))} -- "\${cur^^}")); fi`;
        positional = `local n=0 j
            for ((j = i + 1; j < cword; j++)); do
                case "\${words[j]}" in
                    ${skip.length > 0 ? `${skip.join('|')}) ((j++)) ;;` : ''}
                    -*) ;;
                    *) ((n++)) ;;
                esac
            done
            if ((n >= ${signalIndex})); then ${signals}; else ${containers}; fi`;
      } else if (c.args.some((a) => a.kind === 'container')) positional = containers;
      else if (pos?.kind === 'file') positional = 'COMPREPLY=($(compgen -f -- "$cur"))';
      return `    ${all(c)})
        case "$prev" in
${valueCase(c.options, '            ')}
        esac
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W ${sq(optWords)} -- "$cur"))
        else
            ${positional}
        fi
        ;;`;
    })
    .join('\n');
  return `# bash completion for ${spec.name}
# Install: ${spec.name} completion -s bash -o /etc/bash_completion.d/${spec.name}   (or source it from ~/.bashrc)

# The installed containers (name:version and name) of the runtime this command line talks to.
_${f}_containers() {
    # COMP_LINE split at blanks only: COMP_WORDS would split tcp://host:port at the colons.
    local -a line
    read -ra line <<< "$COMP_LINE"
    local -a cmd=("\${line[0]}")
    local i
    for ((i = 1; i < \${#line[@]}; i++)); do
        case "\${line[i]}" in
            -u|--url) cmd+=(--url "\${line[i+1]}"); break ;;
            --url=*) cmd+=("\${line[i]}"); break ;;
        esac
    done
    "\${cmd[@]}" --timeout 2s --format json list 2>/dev/null | ${SED_CONTAINERS} | while IFS= read -r c; do
        printf '%s\\n%s\\n' "$c" "\${c%%:*}"
    done | sort -u
}

_${f}() {
    local cur prev
    local -a words
    local cword
    if declare -F _get_comp_words_by_ref >/dev/null; then
        # Keep name:version and tcp://host:port in one word.
        _get_comp_words_by_ref -n : cur prev words cword
    else
        words=("\${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur="\${COMP_WORDS[COMP_CWORD]}"
        prev="\${COMP_WORDS[COMP_CWORD-1]}"
    fi
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        case "\${words[i]}" in
            ${valued(spec.options).join('|')}) ((i++)) ;;
            -*) ;;
            *) cmd="\${words[i]}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        case "$prev" in
${valueCase(spec.options, '            ')}
        esac
        COMPREPLY=($(compgen -W ${sq(words)} -- "$cur"))
    else
        case "$cmd" in
${cmdCases}
        esac
    fi
    if declare -F __ltrim_colon_completions >/dev/null; then
        __ltrim_colon_completions "$cur"
    fi
    return 0
}

complete -F _${f} ${spec.name}
`;
}

/** Text for zsh inside single quotes: `_describe` items and `:message:` parts need `\:`. */
const zdesc = (s: string): string => s.replace(/[[\]]/g, '').replace(/:/g, '\\:').replace(/'/g, `'\\''`);
/** Text inside an option's `[...]` explanation (colons are fine there, brackets are not). */
const zexpl = (s: string): string => s.replace(/[[\]]/g, '').replace(/'/g, `'\\''`);

function zshOption(o: OptionSpec): string {
  const fl = flags(o);
  const excl = fl.length > 1 ? `'(${fl.join(' ')})'` : '';
  const action = o.value === undefined ? '' : `:${zdesc(o.value)}:${o.choices ? `(${o.choices.join(' ')})` : o.file ? '_files' : ''}`;
  const names = fl.map((x) => (o.value === undefined ? x : x.startsWith('--') ? `${x}=` : `${x}+`));
  const body = `[${zexpl(o.description)}]${action}`;
  if (names.length === 1) return `'${names[0]}${body}'`;
  return `${excl}{${names.join(',')}}'${body}'`;
}

function zshArg(a: ArgSpec, index: number): string {
  const action = a.kind === 'container' ? `_${'nstar'}_containers` : a.kind === 'file' ? '_files' : a.kind === 'signal' ? `(${SIGNAL_NAMES.join(' ')})` : '';
  return a.variadic ? `'*:${zdesc(a.name)}:${action}'` : `'${index + 1}:${zdesc(a.name)}:${action}'`;
}

function zshScript(spec: ProgramSpec): string {
  const f = fn(spec);
  const items = spec.commands.flatMap((c) => [c.name, ...c.aliases].map((n) => `        '${zdesc(n)}:${zdesc(c.description)}'`));
  const cases = spec.commands
    .map((c) => {
      const specs = [...c.options.map(zshOption), ...c.args.map((a, i) => zshArg(a, i).replace('_nstar_containers', `_${f}_containers`))];
      return `        (${[c.name, ...c.aliases].join('|')})\n          _arguments -s \\\n            ${specs.join(' \\\n            ')}\n          ;;`;
    })
    .join('\n');
  return `#compdef ${spec.name}
# zsh completion for ${spec.name}
# Install: ${spec.name} completion -s zsh -o "\${fpath[1]}/_${spec.name}"   (or source it after compinit)

# The installed containers (name:version and name) of the runtime this command line talks to.
_${f}_containers() {
  local -a cmd containers
  local i
  # The whole command line, saved by _${f} before _arguments narrowed words to the subcommand.
  cmd=(\${_${f}_words[1]})
  for ((i = 2; i < \${#_${f}_words}; i++)); do
    case \${_${f}_words[i]} in
      -u|--url) cmd+=(--url \${_${f}_words[i+1]}); break ;;
      --url=*) cmd+=(\${_${f}_words[i]}); break ;;
    esac
  done
  containers=(\${(f)"$(\${cmd[@]} --timeout 2s --format json list 2>/dev/null | ${SED_CONTAINERS})"})
  containers+=(\${containers%%:*})
  compadd -a containers
}

_${f}() {
  local curcontext="$curcontext" state line
  local -a _${f}_words
  _${f}_words=("\${words[@]}")
  typeset -A opt_args
  _arguments -C -s \\
    ${spec.options.map(zshOption).join(' \\\n    ')} \\
    '1: :->command' \\
    '*:: :->args'
  case $state in
    command)
      local -a commands
      commands=(
${items.join('\n')}
      )
      _describe -t commands '${spec.name} command' commands
      ;;
    args)
      case \${line[1]} in
${cases}
      esac
      ;;
  esac
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _${f} "$@"
else
  compdef _${f} ${spec.name}
fi
`;
}

function fishScript(spec: ProgramSpec): string {
  const f = fn(spec);
  const n = spec.name;
  const fq = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const opt = (o: OptionSpec, cond: string): string => {
    const parts = [`complete -c ${n} -n ${fq(cond)}`];
    if (o.short) parts.push(`-s ${o.short}`);
    if (o.long) parts.push(`-l ${o.long}`);
    if (o.value !== undefined) parts.push(o.choices ? `-x -a ${fq(o.choices.join(' '))}` : o.file ? '-r -F' : '-x');
    parts.push(`-d ${fq(o.description)}`);
    return parts.join(' ');
  };
  const lines: string[] = [
    `# fish completion for ${n}`,
    `# Install: ${n} completion -s fish -o ~/.config/fish/completions/${n}.fish`,
    '',
    '# The installed containers (name:version and name) of the runtime this command line talks to.',
    `function __${f}_containers`,
    '    set -l tokens (commandline -opc)',
    '    set -l cmd $tokens[1]',
    '    for i in (seq 2 (count $tokens))',
    '        switch $tokens[$i]',
    '            case -u --url',
    '                set -a cmd --url $tokens[(math $i + 1)]',
    '                break',
    "            case '--url=*'",
    '                set -a cmd $tokens[$i]',
    '                break',
    '        end',
    '    end',
    '    command -q $cmd[1]; or return',
    `    for c in ($cmd --timeout 2s --format json list 2>/dev/null | string replace -rf '^\\s*"container": "(.*)",?$' '$1')`,
    '        echo $c',
    "        string split -m1 : -- $c | head -n1",
    '    end',
    'end',
    '',
    `complete -c ${n} -f`,
  ];
  for (const o of spec.options) lines.push(opt(o, '__fish_use_subcommand'));
  for (const c of spec.commands) {
    for (const name of [c.name, ...c.aliases]) lines.push(`complete -c ${n} -n '__fish_use_subcommand' -a ${name} -d ${fq(c.description)}`);
  }
  for (const c of spec.commands) {
    const cond = `__fish_seen_subcommand_from ${[c.name, ...c.aliases].join(' ')}`;
    for (const o of c.options) lines.push(opt(o, cond));
    const signalIndex = c.args.findIndex((a) => a.kind === 'signal');
    if (signalIndex > 0) {
      // Words on the line before the cursor: nstar, the command, then its arguments.
      lines.push(`complete -c ${n} -n ${fq(`${cond}; and test (count (commandline -opc)) -le ${signalIndex + 1}`)} -x -a '(__${f}_containers)'`);
      lines.push(`complete -c ${n} -n ${fq(`${cond}; and test (count (commandline -opc)) -gt ${signalIndex + 1}`)} -x -a ${fq(SIGNAL_NAMES.join(' '))}`);
    } else if (c.args.some((a) => a.kind === 'container')) lines.push(`complete -c ${n} -n ${fq(cond)} -x -a '(__${f}_containers)'`);
    else if (c.args[0]?.kind === 'file') lines.push(`complete -c ${n} -n ${fq(cond)} -F`);
  }
  return lines.join('\n') + '\n';
}
