// Usage pictures for one scope (a key, a project, the organisation): spend and tokens per day over
// the last 30 or 90 days, requests per hour over the last 48 hours, from the scope's history
// (`…/history?days=N`: one row per day, zeros included, and 48 hourly rows).
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { BarChart, dayPoints, hourPoints } from './charts.jsx';
import { Loaded, useLoad } from './ui.jsx';

export function UsageCharts({ path, title }) {
  const [days, setDays] = useState(30);
  const history = useLoad(() => api('GET', `${path}?days=${days}`), [path, days]);
  return (
    <section class="usage" aria-label={title}>
      <div class="section-head">
        <h2>{title}</h2>
        <div class="segmented" role="group" aria-label="Days shown">
          {[30, 90].map((n) => (
            <button key={n} type="button" aria-pressed={days === n} onClick={() => setDays(n)}>
              {n} days
            </button>
          ))}
        </div>
      </div>
      <Loaded state={history}>
        {(h) => (
          <div class="charts">
            <BarChart id="chart-spend" title={`Spend per day, last ${days} days`} points={dayPoints(h.days, 'cost_micros')} format="money" />
            <BarChart id="chart-tokens" title={`Tokens per day, last ${days} days`} points={dayPoints(h.days, 'tokens')} />
            <BarChart id="chart-requests" title="Requests per hour, last 48 hours" points={hourPoints(h.hours)} />
            {h.keys_omitted > 0 && (
              <p class="muted">
                Sums over {h.keys_included} keys; {h.keys_omitted} more are not included (at most 200 per picture).
              </p>
            )}
          </div>
        )}
      </Loaded>
    </section>
  );
}
