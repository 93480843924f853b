package worker

import "context"

// SweepOnce runs one sweep now; the loop calls sweepOnce on its own.
func (w *Worker) SweepOnce(ctx context.Context) { _ = w.sweepOnce(ctx) }
