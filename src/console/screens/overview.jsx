// Overview: the organisation's usage as the caller may see it (the keys it may read), the totals
// per project for those who read project usage everywhere (Admin, Finance), and the headroom of
// each limit with the keys nearest to a cap first.
import { api } from '../api.js';
import { Headroom } from '../charts.jsx';
import { may, maySomewhere } from '../perm.js';
import { Loaded, money, number, useLoad } from '../ui.jsx';
import { UsageCharts } from '../usage.jsx';

export function Overview({ me }) {
  const readsUsage = maySomewhere(me, 'usage.keys.read');
  const orgTotals = may(me, 'usage.projects.read');
  return (
    <>
      <h1>Overview</h1>
      {!readsUsage && <p>Your role reads no usage. Use the navigation to manage what it may.</p>}
      {readsUsage && <UsageCharts path="/admin/v1/history" title="Usage of the keys you may read" />}
      {orgTotals && <ProjectTotals />}
      {readsUsage && <HeadroomOf path="/admin/v1/headroom" />}
    </>
  );
}

/** The headroom of the keys `path` answers (`/admin/v1/headroom[?project=…]`). */
export function HeadroomOf({ path, title }) {
  const headroom = useLoad(() => api('GET', path), [path]);
  return <Loaded state={headroom}>{(h) => <Headroom keys={h.keys} title={title} />}</Loaded>;
}

function ProjectTotals() {
  const usage = useLoad(() => api('GET', '/admin/v1/usage'), []);
  return (
    <section aria-labelledby="totals-title">
      <h2 id="totals-title">Spend per project</h2>
      <Loaded state={usage}>
        {(u) => (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Project</th>
                  <th scope="col" class="num">Today</th>
                  <th scope="col" class="num">This month</th>
                  <th scope="col" class="num">Requests this month</th>
                  <th scope="col" class="num">Tokens this month</th>
                </tr>
              </thead>
              <tbody>
                {u.projects.map((p) => (
                  <tr key={p.project_id}>
                    <th scope="row"><a href={`#/projects/${p.project_id}`}>{p.name}</a></th>
                    <td class="num">{money(p.usage.today.cost_micros)}</td>
                    <td class="num">{money(p.usage.month.cost_micros)}</td>
                    <td class="num">{number(p.usage.month.requests)}</td>
                    <td class="num">{number(p.usage.month.tokens)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row">Organisation</th>
                  <td class="num">{money(u.usage.today.cost_micros)}</td>
                  <td class="num">{money(u.usage.month.cost_micros)}</td>
                  <td class="num">{number(u.usage.month.requests)}</td>
                  <td class="num">{number(u.usage.month.tokens)}</td>
                </tr>
              </tfoot>
            </table>
          </div>
        )}
      </Loaded>
    </section>
  );
}
