// client-node's informer (ListWatch) holding only what its user reads. A cache of every Pod
// the operator can see is the largest thing in its memory: a step Pod as the API server sends
// it (spec, env, managedFields, status, conditions) is several KiB of JSON and several times
// that as objects, and the offer source and the launcher each kept their own full copy. Here
// every listed and watched object goes through `trim` before the cache takes it, and the list is
// read in pages, so neither the cache nor the first list holds whole objects.
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';

/** Objects per list page (client-go's reflector asks for 500). */
export const LIST_PAGE_SIZE = 500;

/** A Watch that hands its callback `trim(object)` for ADDED, MODIFIED and DELETED events. */
class TrimmingWatch<T> extends Watch {
  private readonly trim: (o: T) => T;
  constructor(kc: KubeConfig, trim: (o: T) => T) {
    super(kc);
    this.trim = trim;
  }

  override watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(
      path,
      params,
      (phase, obj) =>
        // ERROR carries a Status, BOOKMARK only a resourceVersion: both pass as they are
        callback(
          phase,
          phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? this.trim(obj as T) : obj,
        ),
      done,
    );
  }
}

export interface TrimmedListWatchOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection's path, as ListWatch takes it (e.g. /api/v1/pods). */
  path: string;
  /** One page of the list with these selectors (`limit`, `_continue` as the generated clients name them). */
  listPage(page: { limit: number; _continue?: string }): Promise<KubernetesListObject<T>>;
  /** The object as the cache keeps it: must keep metadata.name, namespace and resourceVersion. */
  trim(o: T): T;
  labelSelector?: string;
  fieldSelector?: string;
  pageSize?: number;
}

/**
 * Lists every page, trimming as it goes. All pages are one snapshot (the continue token pins the
 * first page's resourceVersion); an expired token fails the list, and the caller relists.
 */
export async function listAllTrimmed<T extends KubernetesObject>(
  o: Pick<TrimmedListWatchOptions<T>, 'listPage' | 'trim' | 'pageSize'>,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let resourceVersion: string | undefined;
  let cont: string | undefined;
  do {
    const page = await o.listPage({
      limit: o.pageSize ?? LIST_PAGE_SIZE,
      ...(cont ? { _continue: cont } : {}),
    });
    resourceVersion ??= page.metadata?.resourceVersion;
    for (const item of page.items) items.push(o.trim(item));
    cont = page.metadata?._continue || undefined;
  } while (cont);
  return { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion } } as KubernetesListObject<T>;
}

/** A ListWatch (not started) whose cache and events carry trimmed objects. */
export function trimmedListWatch<T extends KubernetesObject>(o: TrimmedListWatchOptions<T>): ListWatch<T> {
  return new ListWatch<T>(
    o.path,
    new TrimmingWatch<T>(o.kubeConfig, o.trim),
    () => listAllTrimmed(o),
    false,
    o.labelSelector,
    o.fieldSelector,
  );
}
