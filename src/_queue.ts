/**
 * A waiter in a {@linkcode WaitQueue}. The links are owned by the queue; a
 * node that is not queued has `queued === false`.
 *
 * An interface, not a base class: a queued task builds one of these, and on
 * Node 20 a chain of constructors (four classes then) cost about 5% of a
 * contended `run()` over one class that sets every field itself. Each kind
 * of node is one class, or one object literal, that sets all of its fields
 * in its constructor (or literal) in the order declared, so that every node
 * of a kind shares one shape.
 */
export interface WaitNode {
  prev: WaitNode | undefined;
  next: WaitNode | undefined;
  queued: boolean;
}

/**
 * A doubly linked list of waiters: push, take from either end and remove a
 * node from the middle, all in O(1). An array would make removing an aborted
 * or timed-out waiter a scan.
 */
export class WaitQueue<T extends WaitNode> {
  #head: T | undefined = undefined;
  #tail: T | undefined = undefined;
  size = 0;

  /** Appends `node` as the newest waiter. */
  push(node: T): void {
    node.queued = true;
    node.prev = this.#tail;
    node.next = undefined;
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.size++;
  }

  /** The waiter that came first, left in place. */
  get oldest(): T | undefined {
    return this.#head;
  }

  /** The waiter that came last, left in place. */
  get newest(): T | undefined {
    return this.#tail;
  }

  /** Removes and returns the waiter that came first. */
  takeOldest(): T | undefined {
    const node = this.#head;
    if (node !== undefined) this.remove(node);
    return node;
  }

  /** Removes and returns the waiter that came last. */
  takeNewest(): T | undefined {
    const node = this.#tail;
    if (node !== undefined) this.remove(node);
    return node;
  }

  /** Removes `node`; does nothing if it is no longer queued. */
  remove(node: T): void {
    if (!node.queued) return;
    node.queued = false;
    if (node.prev === undefined) this.#head = node.next as T | undefined;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev as T | undefined;
    else node.next.prev = node.prev;
    node.prev = node.next = undefined;
    this.size--;
  }
}
