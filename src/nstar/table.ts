/**
 * Tables as upstream nstar prints them (prettytable's "no border, line separator" format):
 *
 *    Name        | Version
 *   -------------+---------
 *    hello-world | 0.0.1
 *
 * One space of padding on each side of a cell, `|` between columns, a `-`/`+` rule under
 * the bold titles. Colours (ANSI) only when asked for, that is when stdout is a terminal.
 * Trailing blanks of a line are dropped.
 */

export type Style = 'bold' | 'blue' | 'green' | 'yellow' | 'cyan' | 'red';

/** A cell: its text and an optional style (used only with colours on). */
export interface Cell {
  text: string;
  style?: Style;
}

const SGR: Record<Style, string> = { bold: '1', red: '31', green: '32', yellow: '33', blue: '34', cyan: '36' };

/** Display width: code points (the table holds names, versions and numbers). */
function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function paint(text: string, style: Style | undefined, color: boolean): string {
  return color && style !== undefined && text !== '' ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text;
}

/** Render a table; every row must have as many cells as there are titles. */
export function renderTable(titles: readonly string[], rows: readonly (readonly (Cell | string)[])[], opts: { color?: boolean } = {}): string {
  const color = opts.color ?? false;
  const cells = rows.map((r) => {
    if (r.length !== titles.length) throw new Error(`table row has ${r.length} cells, expected ${titles.length}`);
    return r.map((c): Cell => (typeof c === 'string' ? { text: c } : c));
  });
  const widths = titles.map((t, i) => Math.max(width(t), ...cells.map((r) => width(r[i]!.text))));
  const line = (row: readonly Cell[]): string => {
    const parts = row.map((c, i) => ` ${paint(c.text, c.style, color)}${' '.repeat(widths[i]! - width(c.text))} `);
    return parts.join('|').replace(/ +$/, '');
  };
  const out = [line(titles.map((t) => ({ text: t, style: 'bold' as const }))), widths.map((w) => '-'.repeat(w + 2)).join('+')];
  for (const r of cells) out.push(line(r));
  return out.join('\n') + '\n';
}
