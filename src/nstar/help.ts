/**
 * nstar's help texts beyond commander's: one example per command (shown in the command's
 * help and, all of them, after the program's), and the suggestion for a mistyped command.
 */

/** One example per command, as typed after the Quickstart (its test-container and hello-world). */
export const EXAMPLES: Readonly<Record<string, string>> = {
  list: 'nstar list',
  ps: 'nstar ps',
  repositories: 'nstar repositories',
  mount: 'nstar mount test-container',
  umount: 'nstar umount test-container',
  start: "nstar start test-container '<INIT>' print hello",
  kill: 'nstar kill test-container SIGKILL',
  stop: 'nstar stop -t 5 test-container',
  restart: 'nstar restart hello-world',
  logs: 'nstar logs -f -n 20 hello-world',
  exec: 'nstar exec -it test-container -- /test-container inspect',
  install: 'nstar install --replace build/my-app-0.1.0.npk default',
  uninstall: 'nstar uninstall my-app:0.1.0',
  shutdown: 'nstar shutdown',
  notifications: 'nstar notifications -n 2',
  inspect: 'nstar inspect hello-world',
  token: 'nstar token extern hello',
  'verify-token': 'nstar verify-token "$TOKEN" extern hello   # TOKEN: what nstar token extern hello printed',
  ident: 'nstar ident',
  completion: 'nstar completion -s bash -o /etc/bash_completion.d/nstar',
  seccomp: 'nstar seccomp app.strace > seccomp.yaml',
  help: 'nstar help logs',
};

/** The `Example:` block after one command's help. */
export function commandExample(name: string): string | undefined {
  const e = EXAMPLES[name];
  return e === undefined ? undefined : `\nExample:\n  $ ${e}\n`;
}

/** The `Examples:` block after the program's help: one line per command, in their order. */
export function programExamples(commands: readonly string[]): string {
  const lines = commands.flatMap((c) => (EXAMPLES[c] === undefined ? [] : [`  $ ${EXAMPLES[c]}`]));
  return `\nExamples:\n${lines.join('\n')}\n`;
}

/** Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The commands a mistyped `word` plausibly meant: a typo keeps the first letter, is at most
 * two edits away and keeps at least 70 % of the longer word (`lgos` → logs, `instal` →
 * install), so words of other tools (`top`, `pull`, `status`) suggest nothing unrelated.
 */
export function suggestCommands(word: string, candidates: readonly string[]): string[] {
  const w = word.toLowerCase();
  const scored = candidates
    .filter((c) => c[0] === w[0])
    .map((c) => ({ c, d: editDistance(w, c) }))
    .filter(({ c, d }) => d <= 2 && (Math.max(c.length, w.length) - d) / Math.max(c.length, w.length) >= 0.7);
  if (scored.length === 0) return [];
  const best = Math.min(...scored.map((s) => s.d));
  return scored.filter((s) => s.d === best).map((s) => s.c).sort();
}
