import { ApiObject, JsonPatch } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { ConfigError } from './errors';
import { PartLabels } from './labels';
import { checkDnsSubdomain } from './validate';

/**
 * Where and how pods run: scheduling, image pull secrets and pod template metadata. Each key is the
 * pod field of the same name, written as Kubernetes writes it (a toleration or an affinity can be
 * copied from a manifest).
 *
 * `pods` of the stack applies to every pod it makes: the server, the stores, the bucket Job and the
 * scheduled jobs. A part's own `pods` (`server.pods`, `backendStore.postgres.pods`, ...) overrides it
 * field by field: in `nodeSelector`, `annotations` and `labels` key by key, the part's value winning
 * (a key of the stack's map stays unless the part gives it another value); every other field the
 * part gives replaces the stack's (an empty list or `{}` clears it for that part).
 */
export interface PodOptions {
  /**
   * Labels a node must carry for the pods to run on it (`spec.nodeSelector`), e.g. `{ 'kubernetes.io/arch': 'amd64' }`.
   * @default - any node
   */
  readonly nodeSelector?: { [key: string]: string };
  /**
   * Node taints the pods tolerate (`spec.tolerations`), e.g.
   * `[{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }]`.
   * @default - none
   */
  readonly tolerations?: k8s.Toleration[];
  /**
   * Node affinity and pod (anti-)affinity (`spec.affinity`). The server's pods, when there are two
   * or more, are also spread over nodes by a soft topology spread constraint (`ScheduleAnyway`), which
   * stays: it counts only the nodes the affinity and node selector allow.
   * @default - none
   */
  readonly affinity?: k8s.Affinity;
  /**
   * PriorityClass of the pods (`spec.priorityClassName`); it must exist in the cluster.
   * @default - the cluster's default priority
   */
  readonly priorityClassName?: string;
  /**
   * Secrets (type `kubernetes.io/dockerconfigjson`, in the stack's namespace) to pull the images with
   * (`spec.imagePullSecrets`), e.g. `[{ name: 'registry-pull' }]`.
   * @default - none: the node's credentials and the namespace's default service account's
   */
  readonly imagePullSecrets?: k8s.LocalObjectReference[];
  /**
   * Annotations of the pod template (not of the Deployment, StatefulSet or job around it).
   * @default - none
   */
  readonly annotations?: { [key: string]: string };
  /**
   * More labels on the pod template. The stack's own `app.kubernetes.io/*` labels (its selectors and
   * NetworkPolicies pick pods by them) cannot be set here.
   * @default - the stack's labels only
   */
  readonly labels?: { [key: string]: string };
}

/** The label keys the stack writes on every pod template; a setting must not replace them. */
const STACK_LABELS = Object.keys(new PartLabels('instance', 'name', 'component', 'version').all);
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const TOLERATION_OPERATORS = ['Equal', 'Exists'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const NODE_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'];
const LABEL_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
/** Kubernetes' range of a preferred term's weight. */
const WEIGHT = { minimum: 1, maximum: 100 };

/** A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
function checkQualifiedName(name: string, what: string, key: string): void {
  const slash = name.lastIndexOf('/');
  const prefix = slash >= 0 ? name.slice(0, slash) : undefined;
  const local = name.slice(slash + 1);
  const prefixOk = prefix === undefined || (prefix.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(prefix));
  if (!prefixOk || local.length > 63 || !NAME.test(local)) {
    throw new ConfigError(`${key}: ${JSON.stringify(name)} is not a valid ${what} (an optional DNS-subdomain prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)`, key);
  }
}

function checkLabelValue(value: unknown, name: string, key: string): void {
  if (typeof value !== 'string' || (value !== '' && (value.length > 63 || !NAME.test(value)))) {
    throw new ConfigError(`${key}: the value of ${name} must be empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit; got ${JSON.stringify(value)}`, key);
  }
}

function checkOperator(operator: string | undefined, allowed: string[], key: string): void {
  if (!allowed.includes(operator ?? '')) {
    throw new ConfigError(`${key}: operator must be one of ${allowed.join(', ')}; got ${JSON.stringify(operator)}`, key);
  }
}

function checkTolerations(tolerations: k8s.Toleration[], key: string): void {
  tolerations.forEach((t, i) => {
    const at = [`${key}.${i}`, key];
    const fail = (why: string) => { throw new ConfigError(`${key}[${i}]: ${why}`, at); };
    const operator = t.operator ?? 'Equal';
    if (!TOLERATION_OPERATORS.includes(operator)) fail(`operator must be one of ${TOLERATION_OPERATORS.join(', ')}; got ${JSON.stringify(t.operator)}`);
    if (t.effect !== undefined && t.effect !== '' && !TAINT_EFFECTS.includes(t.effect)) fail(`effect must be one of ${TAINT_EFFECTS.join(', ')} (or empty for all); got ${JSON.stringify(t.effect)}`);
    if (!t.key && operator !== 'Exists') fail('a toleration without key must have operator Exists (it then tolerates every taint)');
    if (t.key) checkQualifiedName(t.key, 'taint key', `${key}.${i}`);
    if (operator === 'Exists' && t.value) fail('value must be empty with operator Exists');
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') fail('tolerationSeconds needs effect NoExecute');
  });
}

function checkAffinity(affinity: k8s.Affinity, key: string): void {
  const weight = (w: number, at: string) => {
    if (!Number.isInteger(w) || w < WEIGHT.minimum || w > WEIGHT.maximum) throw new ConfigError(`${at}: weight must be an integer from ${WEIGHT.minimum} to ${WEIGHT.maximum}; got ${w}`, at);
  };
  const selector = (s: k8s.LabelSelector | undefined, at: string) => (s?.matchExpressions ?? []).forEach((e) => checkOperator(e.operator, LABEL_OPERATORS, at));
  const nodeTerm = (term: k8s.NodeSelectorTerm, at: string) =>
    [...(term.matchExpressions ?? []), ...(term.matchFields ?? [])].forEach((e) => checkOperator(e.operator, NODE_OPERATORS, at));
  const podTerm = (term: k8s.PodAffinityTerm, at: string) => {
    if (!term.topologyKey) throw new ConfigError(`${at}: topologyKey must not be empty (e.g. kubernetes.io/hostname)`, at);
    selector(term.labelSelector, at);
    selector(term.namespaceSelector, at);
  };
  const node = affinity.nodeAffinity;
  const nodeAt = `${key}.nodeAffinity`;
  node?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms.forEach((t) => nodeTerm(t, nodeAt));
  node?.preferredDuringSchedulingIgnoredDuringExecution?.forEach((p) => { weight(p.weight, nodeAt); nodeTerm(p.preference, nodeAt); });
  for (const [name, pods] of [['podAffinity', affinity.podAffinity], ['podAntiAffinity', affinity.podAntiAffinity]] as const) {
    const at = `${key}.${name}`;
    pods?.requiredDuringSchedulingIgnoredDuringExecution?.forEach((t) => podTerm(t, at));
    pods?.preferredDuringSchedulingIgnoredDuringExecution?.forEach((p) => { weight(p.weight, at); podTerm(p.podAffinityTerm, at); });
  }
}

/**
 * Checks pod settings given at `key` (`pods`, `server.pods`): what Kubernetes would refuse, and
 * labels that would replace the stack's own.
 */
export function checkPodOptions(options: PodOptions | undefined, key: string): PodOptions | undefined {
  if (options === undefined) return undefined;
  for (const [name, value] of Object.entries(options.nodeSelector ?? {})) {
    checkQualifiedName(name, 'node label key', `${key}.nodeSelector`);
    checkLabelValue(value, name, `${key}.nodeSelector`);
  }
  for (const [name, value] of Object.entries(options.labels ?? {})) {
    if (STACK_LABELS.includes(name)) {
      throw new ConfigError(`${key}.labels: ${name} is set by the stack on every pod (${STACK_LABELS.join(', ')}; its selectors and NetworkPolicies pick pods by them), so it cannot be set here; use another key`, `${key}.labels`);
    }
    checkQualifiedName(name, 'label key', `${key}.labels`);
    checkLabelValue(value, name, `${key}.labels`);
  }
  for (const [name, value] of Object.entries(options.annotations ?? {})) {
    checkQualifiedName(name, 'annotation key', `${key}.annotations`);
    if (typeof value !== 'string') throw new ConfigError(`${key}.annotations: the value of ${name} must be a string; got ${JSON.stringify(value)}`, `${key}.annotations`);
  }
  if (options.priorityClassName !== undefined) checkDnsSubdomain(options.priorityClassName, `${key}.priorityClassName`);
  (options.imagePullSecrets ?? []).forEach((s, i) => checkDnsSubdomain(s.name ?? '', `${key}.imagePullSecrets.${i}`));
  checkTolerations(options.tolerations ?? [], `${key}.tolerations`);
  if (options.affinity) checkAffinity(options.affinity, `${key}.affinity`);
  return options;
}

/**
 * The pod settings of one part: the stack's (`stack`, already checked) with the part's own (checked
 * here, at `key`) over them; see PodOptions for the rule.
 */
export function podSettings(stack: PodOptions | undefined, part: PodOptions | undefined, key: string): PodOptions {
  checkPodOptions(part, key);
  const map = (name: 'nodeSelector' | 'annotations' | 'labels') =>
    (stack?.[name] === undefined && part?.[name] === undefined ? undefined : { ...stack?.[name], ...part?.[name] });
  return {
    nodeSelector: map('nodeSelector'),
    tolerations: part?.tolerations ?? stack?.tolerations,
    affinity: part?.affinity ?? stack?.affinity,
    priorityClassName: part?.priorityClassName ?? stack?.priorityClassName,
    imagePullSecrets: part?.imagePullSecrets ?? stack?.imagePullSecrets,
    annotations: map('annotations'),
    labels: map('labels'),
  };
}

const nonEmpty = <T extends object>(value: T | undefined): T | undefined => (value !== undefined && Object.keys(value).length > 0 ? value : undefined);

/** The pod template's metadata: the part's labels with the settings' labels, and the settings' annotations. */
export function podMetadata(labels: PartLabels, pods: PodOptions): { labels: Record<string, string>; annotations?: Record<string, string> } {
  const annotations = nonEmpty(pods.annotations);
  return { labels: { ...labels.all, ...pods.labels }, ...(annotations ? { annotations: { ...annotations } } : {}) };
}

/**
 * Adds the settings' pod spec fields to the pod template at `templatePath` of `object`
 * (`/spec/template`, or a CronJob's `/spec/jobTemplate/spec/template`). The stack sets none of these
 * fields itself, so each is added whole; empty ones are left out.
 */
export function addPodSpecFields(object: ApiObject, templatePath: string, pods: PodOptions): void {
  const affinity = nonEmpty(k8s.toJson_Affinity(pods.affinity));
  const fields: Record<string, unknown> = {
    nodeSelector: nonEmpty(pods.nodeSelector),
    tolerations: pods.tolerations?.length ? pods.tolerations.map((t) => k8s.toJson_Toleration(t)) : undefined,
    affinity,
    priorityClassName: pods.priorityClassName,
    imagePullSecrets: pods.imagePullSecrets?.length ? pods.imagePullSecrets.map((s) => k8s.toJson_LocalObjectReference(s)) : undefined,
  };
  for (const [field, value] of Object.entries(fields)) {
    if (value !== undefined) object.addJsonPatch(JsonPatch.add(`${templatePath}/spec/${field}`, value));
  }
}

/** Whether the settings change a pod at all (a Job whose name hashes its pod only then hashes them). */
export function hasPodSettings(pods: PodOptions): boolean {
  return Object.values(pods).some((v) => v !== undefined && (typeof v !== 'object' || Object.keys(v).length > 0));
}
