// Overview: the organisation's usage as the caller may see it (the keys it may read), the totals
// per project for those who read project usage everywhere (Admin, Finance), and the headroom of
// each limit with the keys nearest to a cap first.
import { api } from '../api.js';
import { Headroom } from '../charts.jsx';
import { may, maySomewhere } from '../perm.js';
import { Loaded, money, number, Table, useLoad } from '../ui.jsx';
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
          <Table
            caption="Spend per project"
            columns={['Project', ['Today', 'num'], ['This month', 'num'], ['Requests this month', 'num'], ['Tokens this month', 'num']]}
            rows={u.projects.map((p) => <TotalsRow key={p.project_id} label={<a href={`#/projects/${p.project_id}`}>{p.name}</a>} usage={p.usage} />)}
            foot={<TotalsRow label="Organisation" usage={u.usage} />}
          />
        )}
      </Loaded>
    </section>
  );
}

/** One line of usage totals: today's and this month's spend, this month's requests and tokens. */
function TotalsRow({ label, usage }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td class="num">{money(usage.today.cost_micros)}</td>
      <td class="num">{money(usage.month.cost_micros)}</td>
      <td class="num">{number(usage.month.requests)}</td>
      <td class="num">{number(usage.month.tokens)}</td>
    </tr>
  );
}
