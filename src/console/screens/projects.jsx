// Projects: those the caller may read, and for an Admin the form that creates one with its
// boundary (its ceiling starts as that boundary).
import { useState } from 'preact/hooks';
import { all, api } from '../api.js';
import { may } from '../perm.js';
import { projectControl, readRules, RulesFields } from '../rules.jsx';
import { Field, FormEnd, Loaded, ScreenHead, Table, useLoad, useSubmit, when } from '../ui.jsx';

export function Projects({ me }) {
  const [creating, setCreating] = useState(false);
  const [version, setVersion] = useState(0);
  const projects = useLoad(() => all('/admin/v1/projects'), [version]);
  return (
    <>
      <ScreenHead title="Projects">
        {may(me, 'projects.create') && !creating && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>New project</button>
        )}
      </ScreenHead>
      {creating && (
        <CreateProject
          onDone={(project) => {
            setCreating(false);
            if (project) {
              setVersion(version + 1);
              location.hash = `#/projects/${project.id}`;
            }
          }}
        />
      )}
      <Loaded state={projects}>
        {(list) => (
          <Table
            caption="Projects"
            columns={['Name', 'Id', 'Your role', 'Created']}
            empty="No projects yet."
            rows={list.map((p) => (
              <tr key={p.id} data-project={p.id}>
                <th scope="row"><a href={`#/projects/${p.id}`}>{p.name}</a></th>
                <td class="mono">{p.id}</td>
                <td>{me.projects.find((m) => m.project === p.id)?.role ?? '—'}</td>
                <td>{when(p.created_at)}</td>
              </tr>
            ))}
          />
        )}
      </Loaded>
    </>
  );
}

function CreateProject({ onDone }) {
  const form = useSubmit(projectControl);
  const create = async (event) => {
    event.preventDefault();
    const elements = event.currentTarget.elements;
    const rules = readRules(event.currentTarget, 'boundary', { boundary: true });
    const body = {
      name: elements.namedItem('project.name').value.trim(),
      description: elements.namedItem('project.description').value.trim() || null,
      boundary: rules,
    };
    const project = await form.submit(() => api('POST', '/admin/v1/projects', body));
    if (project) onDone(project);
  };
  return (
    <form class="panel" onSubmit={create} aria-labelledby="new-project-title" noValidate>
      <h2 id="new-project-title">New project</h2>
      <div class="grid">
        <Field name="project.name" label="Name" error={form.errors['project.name']}>
          {(p) => <input {...p} required />}
        </Field>
        <Field name="project.description" label="Description" error={form.errors['project.description']}>
          {(p) => <input {...p} />}
        </Field>
      </div>
      <p class="muted">Its boundary: what its keys may have at most. Its owners may narrow it, never widen it.</p>
      <RulesFields scope="boundary" boundary errors={form.errors} />
      <FormEnd form={form} label="Create project" onCancel={() => onDone(null)} />
    </form>
  );
}
