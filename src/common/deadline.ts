/**
 * `p`'s value if it settles within `ms`, else `late`. The timer is cleared either way, so a
 * promise that settles first leaves no timer behind (a shutdown is not held up by it).
 */
export async function settledWithin<T, U>(p: Promise<T>, ms: number, late: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(late), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
