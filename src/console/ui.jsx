// Small pieces every screen uses: loading data, fields with their error, notices, formatting.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** Runs `load` now and whenever `deps` change; { data, error, loading, reload }. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === generation.current && setState({ data, error: null, loading: false }),
      (error) => mine === generation.current && setState({ data: undefined, error, loading: false }),
    );
  }, deps);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/**
 * A form's submission: `submit(run)` runs `run()` and keeps its refusal: `errors` maps a field
 * (`errorKey` of the refusal) to its message; `failure` is a refusal that names no field shown here.
 */
export function useSubmit(errorKey = (field) => field) {
  const [state, setState] = useState({ busy: false, errors: {}, failure: null });
  const submit = async (run) => {
    setState({ busy: true, errors: {}, failure: null });
    try {
      const result = await run();
      setState({ busy: false, errors: {}, failure: null });
      return result;
    } catch (error) {
      const key = error.field ? errorKey(error.field) : null;
      setState({ busy: false, errors: key ? { [key]: error.message } : {}, failure: key ? null : error });
      if (key) focusField(key);
      return undefined;
    }
  };
  return { ...state, submit };
}

function focusField(key) {
  requestAnimationFrame(() => document.getElementById(fieldId(key))?.focus());
}

/** The element id of the field named `name` (a refusal's field after errorKey). */
export const fieldId = (name) => `f-${name.replace(/[^\w-]/g, '-')}`;

/** A labelled control with its hint and its error, tied together for screen readers. */
export function Field({ name, label, hint, error, children, wide }) {
  const id = fieldId(name);
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field${error ? ' invalid' : ''}${wide ? ' wide' : ''}`}>
      <label for={id}>{label}</label>
      {children({ id, name, 'aria-describedby': described, 'aria-invalid': error ? 'true' : undefined })}
      {hint && <small id={`${id}-hint`}>{hint}</small>}
      {error && (
        <p class="field-error" id={`${id}-error`} role="alert" data-field={name}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A refusal or failure that names no field. */
export function Failure({ error }) {
  if (!error) return null;
  return (
    <p class="failure" role="alert" data-code={error.code}>
      {error.message}
    </p>
  );
}

/** A form's end: its refusal that names no field, its submit button (`label`) and Cancel. */
export function FormEnd({ form, label, onCancel }) {
  return (
    <>
      <Failure error={form.failure} />
      <div class="actions">
        <button type="submit" class="primary" disabled={form.busy}>{label}</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </>
  );
}

/** Shows `loading` / the error, or renders `children(data)`. */
export function Loaded({ state, children }) {
  if (state.error) return <Failure error={state.error} />;
  if (state.data === undefined) return <p class="muted" aria-live="polite">Loading…</p>;
  return children(state.data);
}

/** A button that asks "sure?" in place before it acts. */
export function ConfirmButton({ label, confirm, onConfirm, danger, disabled }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" class={danger ? 'danger' : ''} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={confirm}>
      <span>{confirm}</span>
      <button type="button" class="danger" onClick={() => { setAsking(false); onConfirm(); }} autoFocus>
        Yes, {label.toLowerCase()}
      </button>
      <button type="button" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

/**
 * A secret shown once, with a copy button and the warning that it will not be shown again;
 * `kept` says what the server keeps of it (a hash, unless told otherwise).
 */
export function SecretOnce({ label, secret, kept = 'Only its hash is stored.', children }) {
  const [copied, setCopied] = useState(false);
  const input = useRef(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
    } catch {
      input.current.select();
      document.execCommand('copy');
    }
    setCopied(true);
  };
  return (
    <section class="secret" aria-labelledby="secret-title">
      <h3 id="secret-title">{label}</h3>
      <p class="warning">
        <strong>Copy it now: you will not see this again.</strong> {kept}
      </p>
      <div class="secret-row">
        <input ref={input} readOnly value={secret} aria-label={label} class="mono" data-secret />
        <button type="button" onClick={copy}>{copied ? 'Copied' : 'Copy'}</button>
      </div>
      <p class="muted" aria-live="polite">{copied ? 'Copied to the clipboard.' : ''}</p>
      {children}
    </section>
  );
}

/** Micro-dollars as dollars: cents from a dollar up, three significant digits below. */
export const money = (micros) => {
  const dollars = Number(micros ?? 0) / 1e6;
  const digits = dollars >= 1 || dollars === 0 ? { minimumFractionDigits: 2, maximumFractionDigits: 2 } : { maximumSignificantDigits: 3 };
  return `$${dollars.toLocaleString('en-US', digits)}`;
};
export const number = (n) => Number(n ?? 0).toLocaleString('en-US');
export const when = (ms) => (ms ? new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—');
/** Splits a comma- or newline-separated list, dropping blanks. */
export const list = (text) => String(text ?? '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

/** A screen's title with its main action beside it. */
export function ScreenHead({ title, children }) {
  return (
    <div class="section-head">
      <h1>{title}</h1>
      {children}
    </div>
  );
}

/**
 * A table that scrolls sideways on its own when narrow: `columns` are its header cells (a label,
 * or [label, class]); `rows` its body rows, `empty` said when there are none; `foot` its footer.
 */
export function Table({ caption, columns, rows, empty, foot, name }) {
  return (
    <div class="table-wrap">
      <table class={name}>
        {caption && <caption class="sr-only">{caption}</caption>}
        <thead>
          <tr>
            {columns.filter(Boolean).map((column) => {
              const [label, kind] = Array.isArray(column) ? column : [column];
              return <th key={label} scope="col" class={kind}>{label}</th>;
            })}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && empty && (
            <tr><td colSpan={columns.filter(Boolean).length} class="muted">{empty}</td></tr>
          )}
          {rows}
        </tbody>
        {foot && <tfoot>{foot}</tfoot>}
      </table>
    </div>
  );
}
