// What the signed-in caller may do, from who-am-I: `permitted` maps each permission the caller's role
// holds to the standing it needs toward the resource (the server's permission table, one row per
// permission: "any", "member", "owner", "owner_or_creator", "creator"); a permission not listed is
// never held. The page shows a control only when `may` holds, so a control a role may not use is
// absent; the server still checks every call.

/** The standing `permission` needs, or undefined when the caller never holds it. */
export function access(me, permission) {
  const permitted = me?.permitted;
  if (!permitted) return undefined;
  if (Array.isArray(permitted)) return permitted.includes(permission) ? 'any' : undefined;
  return permitted[permission];
}

/** The caller's role in `project` ("owner", "member") or undefined. */
export function projectRole(me, project) {
  return me?.projects?.find((p) => p.project === project)?.role;
}

/**
 * Whether the caller may use `permission` on a resource of `project` (a key: created by `creator`);
 * without a project, whether it may on the organisation.
 */
export function may(me, permission, { project, creator } = {}) {
  const needed = access(me, permission);
  if (!needed) return false;
  const role = projectRole(me, project);
  const member = role !== undefined;
  const owner = role === 'owner';
  const created = creator !== undefined && creator === me.id && member;
  switch (needed) {
    case 'any':
      return true;
    case 'member':
      return member;
    case 'owner':
      return owner;
    case 'owner_or_creator':
      return owner || created;
    case 'creator':
      return created;
    default:
      return false;
  }
}

/** Whether the caller may use `permission` on at least one resource (to show a screen or a button). */
export function maySomewhere(me, permission) {
  const needed = access(me, permission);
  if (!needed) return false;
  if (needed === 'any') return true;
  if (needed === 'owner') return me.projects.some((p) => p.role === 'owner');
  return me.projects.length > 0;
}

/** The projects in which the caller may use `permission` (for a project picker). */
export function projectsWhere(me, permission, projects) {
  return projects.filter((p) => may(me, permission, { project: p.id }));
}
