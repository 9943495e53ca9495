// The fields of a key (name, description, tags, expiry and its rules), for creating and editing,
// and what they hold as the admin API's body.
import { readRules, RulesFields } from '../rules.jsx';
import { Field, list } from '../ui.jsx';

/** `datetime-local` text for Unix ms, in the browser's time zone. */
const localTime = (ms) => {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

/** The key's fields as a body: `{ name, description, tags, expires_at, …rules }`. */
export function readKey(form) {
  const value = (name) => String(form.elements.namedItem(`key.${name}`)?.value ?? '').trim();
  const rules = readRules(form, 'key');
  const expires = value('expires_at');
  return {
    name: value('name'),
    description: value('description') || null,
    tags: list(value('tags')),
    expires_at: expires ? new Date(expires).getTime() : null,
    ...rules,
  };
}

export function KeyFields({ value = {}, errors = {}, children }) {
  const named = (name) => `key.${name}`;
  return (
    <>
      <div class="grid">
        <Field name={named('name')} label="Name" error={errors[named('name')]}>
          {(p) => <input {...p} required defaultValue={value.name ?? ''} />}
        </Field>
        {children}
        <Field name={named('description')} label="Description" error={errors[named('description')]}>
          {(p) => <input {...p} defaultValue={value.description ?? ''} />}
        </Field>
        <Field name={named('tags')} label="Tags" hint="Comma-separated, e.g. env:prod, team/search" error={errors[named('tags')]}>
          {(p) => <input {...p} defaultValue={(value.tags ?? []).join(', ')} />}
        </Field>
        <Field name={named('expires_at')} label="Expires" hint="Your local time; empty: never (unless a boundary sets a lifetime)." error={errors[named('expires_at')]}>
          {(p) => <input {...p} type="datetime-local" defaultValue={localTime(value.expires_at)} />}
        </Field>
      </div>
      <RulesFields scope="key" value={value.policy ?? {}} errors={errors} />
    </>
  );
}
