package bot

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Background runs a platform's work after the request that started it has been answered:
// late answers, notifications, and what finding a person records (a first-contact link),
// which must not make a person's command wait for the ledger's writer. The zero value is
// ready; Wait is for shutdown.
type Background struct {
	wg sync.WaitGroup
}

// backgroundTimeout bounds one piece of background work.
const backgroundTimeout = 2 * time.Minute

// Go runs fn with its own deadline and without ctx's cancellation (the request's context
// ends with the answer); a failure is logged under what.
func (b *Background) Go(ctx context.Context, log zerolog.Logger, what string, fn func(ctx context.Context) error) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			log.Error().Err(err).Str("op", what).Msg("background work failed")
		}
	}()
}

// Wait blocks until all work started by Go has finished.
func (b *Background) Wait() { b.wg.Wait() }
