package fetch

import (
	"context"
	"sync"
)

// onceMap computes a value once per key, sharing it with concurrent callers.
// Failures caused by a cancelled context are not kept, so a later caller
// with a live context tries again.
type onceMap[V any] struct {
	mu sync.Mutex
	m  map[string]*onceEntry[V]
}

type onceEntry[V any] struct {
	done      chan struct{}
	val       V
	err       error
	abandoned bool // failed because its caller's context ended; not kept
}

func (o *onceMap[V]) do(ctx context.Context, key string, fn func(context.Context) (V, error)) (V, error) {
	for {
		o.mu.Lock()
		if o.m == nil {
			o.m = make(map[string]*onceEntry[V])
		}
		e, ok := o.m[key]
		if !ok {
			e = &onceEntry[V]{done: make(chan struct{})}
			o.m[key] = e
			o.mu.Unlock()
			e.val, e.err = fn(ctx)
			if e.err != nil && ctx.Err() != nil {
				o.mu.Lock()
				delete(o.m, key)
				o.mu.Unlock()
				e.abandoned = true
			}
			close(e.done)
			return e.val, e.err
		}
		o.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		if e.abandoned {
			continue // the first caller's context ended; try again with ours
		}
		return e.val, e.err
	}
}
