// A key's rules and a boundary's (models, routing groups, IP allowlist, limits, spend caps, and for
// a boundary the longest key lifetime): the fields that edit them, the view that shows them, and the
// mapping from a refused field (`boundary.limits.spend[0].limit_micros`) to the control it names.
import { Field, list, money, number } from './ui.jsx';

const SCALARS = [
  ['rpm', 'Requests per minute'],
  ['rph', 'Requests per hour'],
  ['rpd', 'Requests per day'],
  ['tpm', 'Tokens per minute'],
  ['tpd', 'Tokens per day'],
  ['max_in_flight', 'Requests in flight'],
  ['default_max_tokens', 'Default max output tokens'],
];
const PERIODS = ['daily', 'monthly', 'total'];

/**
 * The control a refused field names, within the form part `scope`: a spend cap's member
 * (`limits.spend[daily].limit_micros`) names that period's cap, a list entry (`models.allow[1]`,
 * `ip_allowlist[0]`) names its list.
 */
export function ruleControl(scope, field) {
  const spend = /^limits\.spend\[(\w+)\]/.exec(field);
  if (spend) return `${scope}.limits.spend.${spend[1]}`;
  const base = field.replace(/\[\d+\].*$/, '');
  return `${scope}.${base.startsWith('models') ? 'models' : base}`;
}

/**
 * The control a project's refused field names: `boundary.…` and `ceiling.…` are rules of that
 * part, anything else a field of the project (`project.name`).
 */
export function projectControl(field) {
  const [part, ...rest] = field.split('.');
  if ((part === 'boundary' || part === 'ceiling') && rest.length > 0) return ruleControl(part, rest.join('.'));
  return `project.${field.replace(/\[\d+\].*$/, '')}`;
}

/** The rules (and for a boundary, its lifetime) the fields of `scope` in `form` hold. */
export function readRules(form, scope, { boundary = false } = {}) {
  const value = (name) => String(form.elements.namedItem(`${scope}.${name}`)?.value ?? '').trim();
  const mode = value('models_mode') || 'all';
  const limits = {};
  for (const [name] of SCALARS) {
    if (value(`limits.${name}`) !== '') limits[name] = Number(value(`limits.${name}`));
  }
  limits.spend = PERIODS.filter((period) => value(`limits.spend.${period}`) !== '').map((period) => ({
    period,
    limit_micros: Math.round(Number(value(`limits.spend.${period}`)) * 1e6),
    mode: value(`limits.spend.${period}.mode`) || 'hard',
  }));
  const rules = {
    models: mode === 'all' ? 'all' : { [mode]: list(value('models')) },
    routing_groups: list(value('routing_groups')),
    ip_allowlist: list(value('ip_allowlist')),
    limits,
  };
  if (boundary) rules.max_key_lifetime_days = value('max_key_lifetime_days') === '' ? null : Number(value('max_key_lifetime_days'));
  return rules;
}

const modelsMode = (models) => (!models || models === 'all' ? 'all' : models.allow ? 'allow' : 'block');
const modelGlobs = (models) => (models && models !== 'all' ? (models.allow ?? models.block).join(', ') : '');

/** The fields of one set of rules; `errors` is keyed by control (`ruleControl`). */
export function RulesFields({ scope, value = {}, errors = {}, boundary = false }) {
  const limits = value.limits ?? {};
  const capOf = (period) => (limits.spend ?? []).find((cap) => cap.period === period);
  const named = (name) => `${scope}.${name}`;
  return (
    <fieldset class="rules">
      <legend>{boundary ? 'What keys below may have' : 'Rules'}</legend>
      <div class="grid">
        <Field name={named('models')} label="Models" error={errors[named('models')]} hint="Globs, comma-separated; * matches any run of characters." wide>
          {(p) => (
            <div class="inline">
              <select name={named('models_mode')} aria-label="Which models" defaultValue={modelsMode(value.models)}>
                <option value="all">All models</option>
                <option value="allow">Only these</option>
                <option value="block">All but these</option>
              </select>
              <input {...p} name={named('models')} defaultValue={modelGlobs(value.models)} placeholder="gpt-4o*, claude-*" />
            </div>
          )}
        </Field>
        <Field name={named('routing_groups')} label="Routing groups" error={errors[named('routing_groups')]} hint="Empty: every group.">
          {(p) => <input {...p} defaultValue={(value.routing_groups ?? []).join(', ')} />}
        </Field>
        <Field name={named('ip_allowlist')} label="IP allowlist" error={errors[named('ip_allowlist')]} hint="Addresses or CIDR ranges; empty: anywhere.">
          {(p) => <input {...p} defaultValue={(value.ip_allowlist ?? []).join(', ')} placeholder="203.0.113.0/24" />}
        </Field>
        {boundary && (
          <Field name={named('max_key_lifetime_days')} label="Longest key lifetime (days)" error={errors[named('max_key_lifetime_days')]} hint="Empty: no maximum.">
            {(p) => <input {...p} type="number" min="1" step="1" defaultValue={value.max_key_lifetime_days ?? ''} />}
          </Field>
        )}
        {SCALARS.map(([name, label]) => (
          <Field key={name} name={named(`limits.${name}`)} label={label} error={errors[named(`limits.${name}`)]}>
            {(p) => <input {...p} type="number" min="1" step="1" inputMode="numeric" defaultValue={limits[name] ?? ''} placeholder="no limit" />}
          </Field>
        ))}
        {PERIODS.map((period) => (
          <Field key={period} name={named(`limits.spend.${period}`)} label={`Spend cap, ${period} (USD)`} error={errors[named(`limits.spend.${period}`)]}>
            {(p) => (
              <div class="inline">
                <input {...p} type="number" min="0.000001" step="any" inputMode="decimal" defaultValue={capOf(period) ? capOf(period).limit_micros / 1e6 : ''} placeholder="no cap" />
                <select name={named(`limits.spend.${period}.mode`)} aria-label={`${period} cap mode`} defaultValue={capOf(period)?.mode ?? 'hard'}>
                  <option value="hard">refuse</option>
                  <option value="warn">warn only</option>
                </select>
              </div>
            )}
          </Field>
        ))}
      </div>
    </fieldset>
  );
}

/** A read-only summary of rules or a boundary (`limitsOnly`: its limits alone). */
export function RulesView({ value = {}, boundary = false, limitsOnly = false }) {
  const limits = value.limits ?? {};
  const rows = [
    ...(limitsOnly ? [] : rulesRows(value)),
    ...(boundary ? [['Longest key lifetime', value.max_key_lifetime_days ? `${value.max_key_lifetime_days} days` : 'no maximum']] : []),
    ...SCALARS.filter(([name]) => limits[name]).map(([name, label]) => [label, number(limits[name])]),
    ...(limits.spend ?? []).map((cap) => [`Spend cap, ${cap.period}`, `${money(cap.limit_micros)}${cap.mode === 'warn' ? ' (warn only)' : ''}`]),
  ];
  if (rows.length === 0) return <p class="muted">No limits.</p>;
  return (
    <dl class="facts">
      {rows.map(([term, detail]) => (
        <div key={term}>
          <dt>{term}</dt>
          <dd>{detail}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Limits in one line: `rpm 10, tpd 5,000, daily cap $2.00`. */
const limitsText = (limits = {}) =>
  [
    ...SCALARS.filter(([name]) => limits[name]).map(([name]) => `${name} ${number(limits[name])}`),
    ...(limits.spend ?? []).map((cap) => `${cap.period} cap ${money(cap.limit_micros)}`),
  ].join(', ');

/**
 * The rows of a key's model rules, routing groups and IP allowlist, and of the limits per model
 * pattern and per end user it may have (kept as they are when the key is edited here).
 */
const rulesRows = (value) => [
    ['Models', modelsMode(value.models) === 'all' ? 'all' : `${modelsMode(value.models) === 'allow' ? 'only' : 'all but'} ${modelGlobs(value.models)}`],
    ['Routing groups', (value.routing_groups ?? []).join(', ') || 'every group'],
    ['IP allowlist', (value.ip_allowlist ?? []).join(', ') || 'anywhere'],
    ...(value.model_limits ?? []).map((m) => [`Models ${m.pattern}`, limitsText(m.limits) || 'no limits']),
    ...(limitsText(value.end_user_limits) ? [['Each end user', limitsText(value.end_user_limits)]] : []),
];
