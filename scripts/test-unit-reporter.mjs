// A node:test reporter for scripts/test-unit.mjs: per test file, how many tests passed,
// were skipped and failed (suites not counted). Writes one JSON object at the end.
export default async function* unitCounts(source) {
  const files = {};
  let withoutFile = 0;
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const d = event.data;
    if (d.details?.type === 'suite') continue;
    if (d.file === undefined) {
      withoutFile++;
      continue;
    }
    const c = (files[d.file] ??= { pass: 0, skip: 0, fail: 0 });
    if (event.type === 'test:fail') c.fail++;
    else if (d.skip !== undefined && d.skip !== false) c.skip++;
    else if (d.todo === undefined || d.todo === false) c.pass++;
  }
  yield `${JSON.stringify({ files, withoutFile })}\n`;
}
