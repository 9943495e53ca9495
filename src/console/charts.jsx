// Charts as inline SVG (no chart library): bars per day or per hour, and headroom bars per limit.
// Each chart has a text equivalent (its label, and a table behind "Show the numbers").
import { useState } from 'preact/hooks';
import { money, number, Table } from './ui.jsx';

// The drawing's own units, about the pixels a chart gets in a three-column row or on a phone, so
// that text is drawn near its size (the picture scales, never stretches).
const WIDTH = 360;
const HEIGHT = 170;
const PAD = { left: 46, right: 4, top: 8, bottom: 20 };

/** A value's label for an axis: 1.2k, 3.4M, $0.0012 (two significant digits for money). */
function short(value, format) {
  if (format === 'money') return `$${Number((value / 1e6).toPrecision(2))}`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}

const full = (value, format) => (format === 'money' ? money(value) : number(value));

/**
 * Bars for `points` ([{label, value}], oldest first); `format` is "money" (micro-dollars) or
 * "count". `title` names the chart for screen readers and the table.
 */
export function BarChart({ title, points, format = 'count', id }) {
  const [table, setTable] = useState(false);
  // At least one request or token, or a cent: an empty chart still has a readable scale.
  const max = Math.max(format === 'money' ? 10000 : 1, ...points.map((p) => p.value));
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, points.length);
  const barW = Math.max(1, step * 0.8);
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const tick = Math.max(1, Math.ceil(points.length / 5));
  return (
    <figure class="chart" id={id} data-total={total}>
      <figcaption>
        {title} <span class="muted">(total {full(total, format)})</span>
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`${title}: total ${full(total, format)} over ${points.length} bars, highest ${full(max === 1 && total === 0 ? 0 : max, format)}`}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(max * f)} y2={y(max * f)} class="grid-line" />
            {(format === 'money' || Number.isInteger(max * f)) && (
              <text x={PAD.left - 4} y={y(max * f) + 4} text-anchor="end" class="axis">{short(max * f, format)}</text>
            )}
          </g>
        ))}
        {points.map((p, i) => (
          <g key={p.label}>
            <rect x={PAD.left + i * step + (step - barW) / 2} y={y(p.value)} width={barW} height={Math.max(0, PAD.top + plotH - y(p.value))} class="bar" data-value={p.value}>
              <title>{`${p.label}: ${full(p.value, format)}`}</title>
            </rect>
            {i % tick === 0 && (
              <text x={PAD.left + i * step + step / 2} y={HEIGHT - 6} text-anchor="middle" class="axis">{p.short ?? p.label}</text>
            )}
          </g>
        ))}
      </svg>
      <button type="button" class="link" aria-expanded={table} onClick={() => setTable(!table)}>
        {table ? 'Hide the numbers' : 'Show the numbers'}
      </button>
      {table && (
        <Table
          caption={title}
          columns={['When', ['Value', 'num']]}
          rows={points.map((p) => (
            <tr key={p.label}><td>{p.label}</td><td class="num">{full(p.value, format)}</td></tr>
          ))}
        />
      )}
    </figure>
  );
}

/** `days` ([{date: "YYYY-MM-DD", …}]) as chart points of `metric`. */
export const dayPoints = (days, metric) => days.map((d) => ({ label: d.date, short: d.date.slice(5), value: Number(d[metric] ?? 0) }));

/** `hours` ([{start_ms, requests}]) as chart points. */
export const hourPoints = (hours, metric = 'requests') =>
  hours.map((h) => {
    const at = new Date(Number(h.start_ms)).toISOString();
    return { label: `${at.slice(0, 13)}:00 UTC`, short: `${at.slice(11, 13)}h`, value: Number(h[metric] ?? 0) };
  });

/** How full a limit is, 0 to 1. */
export const fill = (limit) => (limit.limit > 0 ? Math.min(1, Number(limit.used) / Number(limit.limit)) : 0);

/** How full a key's fullest limit is (-1 without limits). */
const nearest = (key) => Math.max(-1, ...key.limits.map(fill));

/** One limit's bar: used of limit, marked from 80 %. */
function LimitBar({ limit }) {
  const f = fill(limit);
  const format = limit.scope.startsWith('spend') ? 'money' : 'count';
  return (
    <li class={f >= 0.8 ? 'near' : ''} data-scope={limit.scope}>
      <span class="scope">{limit.scope}</span>
      <svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label={`${limit.scope}: ${Math.round(f * 100)}% used`} class="meter">
        <rect x="0" y="0" width="100" height="8" class="meter-bg" />
        <rect x="0" y="0" width={f * 100} height="8" class={f >= 0.8 ? 'meter-near' : 'meter-fill'} />
      </svg>
      <span class="num">
        {full(limit.used, format)} / {full(limit.limit, format)} ({Math.round(f * 100)}%)
      </span>
    </li>
  );
}

/**
 * Headroom: for each key ([{key_id, name, limits: [{scope, used, limit}]}]), a bar per limit; the
 * keys nearest to a cap first, and within a key its fullest limit first. Keys without limits last.
 */
export function Headroom({ keys, title = 'Headroom: keys nearest to a cap first', link = true }) {
  const sorted = [...keys].sort((a, b) => nearest(b) - nearest(a));
  return (
    <section class="headroom" aria-labelledby="headroom-title">
      <h2 id="headroom-title">{title}</h2>
      {sorted.length === 0 && <p class="muted">No keys to show.</p>}
      <ol class="headroom-keys">
        {sorted.map((key) => (
          <li key={key.key_id} data-key={key.key_id}>
            <span class="who">
              {link ? <a href={`#/keys/${key.key_id}`}>{key.name}</a> : key.name}
              {key.project && <span class="muted"> · {key.project}</span>}
            </span>
            {key.limits.length === 0 ? (
              <p class="muted">No limits.</p>
            ) : (
              <ul class="limits">
                {[...key.limits].sort((a, b) => fill(b) - fill(a)).map((limit) => <LimitBar key={limit.scope} limit={limit} />)}
              </ul>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
