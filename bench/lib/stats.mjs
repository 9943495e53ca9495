// Percentiles and table printing shared by the benchmark scripts.

/** {n, mean, p50, p90, p99, max} of values (ms), nearest-rank percentiles; null when empty. */
export function summarize(values) {
  if (!values.length) return null;
  const v = Float64Array.from(values).sort();
  const at = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
  const r = (x) => Math.round(x * 1000) / 1000;
  return {
    n: v.length,
    mean: r(v.reduce((a, b) => a + b, 0) / v.length),
    p50: r(at(50)),
    p90: r(at(90)),
    p99: r(at(99)),
    max: r(v[v.length - 1]),
  };
}

/** A markdown table from a header row and rows of cells (numbers right-aligned). */
export function table(header, rows) {
  const cells = [header, ...rows].map((row) => row.map((c) => (c === null || c === undefined ? '–' : String(c))));
  const width = header.map((_, i) => Math.max(3, ...cells.map((row) => row[i].length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => row[i] === null || row[i] === undefined || /^[-+~]?[\d.,]+( ?[×%a-zµ/]+)?$/.test(String(row[i]))));
  const line = (row) => '| ' + row.map((c, i) => (numeric[i] ? c.padStart(width[i]) : c.padEnd(width[i]))).join(' | ') + ' |';
  const rule = '|' + width.map((w, i) => (numeric[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

/** A number with `digits` decimals, or null. */
export const fmt = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x).toFixed(digits));
