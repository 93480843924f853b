package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Worker heartbeats for the admin's pipeline figures (docs/product.md §9): each running worker
// writes its id and the time into one Redis hash every heartbeatEvery; readers list the workers
// seen within heartbeatForget and drop older entries.
const (
	heartbeatEvery  = 5 * time.Second
	heartbeatForget = 10 * time.Minute
)

func heartbeatKey(prefix string) string { return prefix + "sync:worker-heartbeats" }

// workerID names this worker process: host, pid and a random suffix.
func workerID() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// heartbeat reports this worker alive until ctx ends, then removes its entry.
func (w *Worker) heartbeat(ctx context.Context) {
	if w.Redis == nil {
		return
	}
	id, key := workerID(), heartbeatKey(w.KeyPrefix)
	beat := func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := w.Redis.HSet(c, key, id, strconv.FormatInt(w.Now().UnixMilli(), 10)).Err(); err != nil {
			w.Log.DebugContext(c, "worker heartbeat", "err", err)
		}
	}
	beat()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = w.Redis.HDel(c, key, id).Err()
			cancel()
			return
		case <-t.C:
			beat()
		}
	}
}

// Heartbeat is one worker's last report.
type Heartbeat struct {
	ID       string
	LastSeen time.Time
}

// Heartbeats lists the workers seen recently, most recent first.
func Heartbeats(ctx context.Context, rdb redis.UniversalClient, keyPrefix string) ([]Heartbeat, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := heartbeatKey(keyPrefix)
	all, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read worker heartbeats: %w", err)
	}
	var out []Heartbeat
	var gone []string
	for id, v := range all {
		ms, err := strconv.ParseInt(v, 10, 64)
		seen := time.UnixMilli(ms)
		if err != nil || time.Since(seen) > heartbeatForget {
			gone = append(gone, id)
			continue
		}
		out = append(out, Heartbeat{ID: id, LastSeen: seen})
	}
	if len(gone) > 0 {
		_ = rdb.HDel(ctx, key, gone...).Err()
	}
	slices.SortFunc(out, func(a, b Heartbeat) int { return b.LastSeen.Compare(a.LastSeen) })
	return out, nil
}
