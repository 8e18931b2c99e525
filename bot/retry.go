package bot

import (
	"context"
	"fmt"
	"time"
)

// What a platform reports back when it delivers (or refuses) a direct message, beyond
// Notifier's plain error: when it may be tried again, and where the message landed.

// RetryAfterError means the platform refused a message for now (HTTP 429) and said how
// long to wait; the message was not delivered and may be sent again after After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("rate limited, retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Delivery is where a platform put a message it accepted: enough to update it later.
type Delivery struct {
	Platform  string
	Channel   string
	MessageID string
}

type deliveryKey struct{}

// WithDeliveryRecorder returns a context in which a Notifier's Direct reports where the
// message landed by calling record (Notifier's signature has no room for it).
func WithDeliveryRecorder(ctx context.Context, record func(Delivery)) context.Context {
	return context.WithValue(ctx, deliveryKey{}, record)
}

// RecordDelivery tells the caller of Direct where the message landed; without a recorder
// in ctx it does nothing.
func RecordDelivery(ctx context.Context, d Delivery) {
	if record, ok := ctx.Value(deliveryKey{}).(func(Delivery)); ok {
		record(d)
	}
}
