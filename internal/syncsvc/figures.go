package syncsvc

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sync lag samples for the admin's pipeline figures (docs/product.md §9): every publication
// that carries a lag adds one sample to a Redis sorted set scored by time, shared by all
// workers, so "p50/p99 over the last N minutes" covers the whole fleet. The set keeps at most
// lagSampleWindow of history and lagSampleMax samples.
const (
	lagSampleWindow = time.Hour
	lagSampleMax    = 200_000
)

func lagKey(prefix string) string { return prefix + "sync:lag-samples" }

// observeLag records a publication's lag in the histogram and as a sample. A Redis failure
// only loses the sample.
func (s *Service) observeLag(ctx context.Context, lag float64) {
	s.metrics.LagSeconds.Observe(lag)
	if s.locks == nil || s.locks.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	now := time.Now()
	key := lagKey(s.locks.prefix)
	member := strconv.FormatInt(now.UnixNano(), 36) + ":" + strconv.FormatFloat(lag, 'g', 6, 64)
	pipe := s.locks.rdb.Pipeline()
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: member})
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.Add(-lagSampleWindow).UnixMilli(), 10))
	pipe.ZRemRangeByRank(ctx, key, 0, -lagSampleMax-1)
	pipe.Expire(ctx, key, 2*lagSampleWindow)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.DebugContext(ctx, "record sync lag sample", "err", err)
	}
}

// LagStats are the sync lag percentiles of one window.
type LagStats struct {
	Samples  int
	P50, P99 float64 // seconds; NaN without samples
}

// LagPercentiles reads the lag samples of the last window (at most an hour).
func LagPercentiles(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, window time.Duration) (LagStats, error) {
	samples, err := LagSamples(ctx, rdb, keyPrefix, window)
	if err != nil {
		return LagStats{}, err
	}
	lags := make([]float64, len(samples))
	for i, s := range samples {
		lags[i] = s.Lag
	}
	return LagStatsOf(lags), nil
}

// LagSample is one publication's lag: At is when it was published, Lag (seconds) how long the
// oldest change it brought had waited, so the change was made at At minus Lag.
type LagSample struct {
	At  time.Time
	Lag float64
}

// LagSamples reads the lag samples of the last window (at most an hour), oldest first.
func LagSamples(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, window time.Duration) ([]LagSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	since := time.Now().Add(-window).UnixMilli()
	zs, err := rdb.ZRangeByScoreWithScores(ctx, lagKey(keyPrefix), &redis.ZRangeBy{Min: strconv.FormatInt(since, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("read sync lag samples: %w", err)
	}
	samples := make([]LagSample, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		_, v, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			samples = append(samples, LagSample{At: time.UnixMilli(int64(z.Score)), Lag: f})
		}
	}
	return samples, nil
}

// LagStatsOf returns the percentiles of lags (seconds), which it sorts.
func LagStatsOf(lags []float64) LagStats {
	st := LagStats{Samples: len(lags), P50: math.NaN(), P99: math.NaN()}
	if len(lags) == 0 {
		return st
	}
	slices.Sort(lags)
	st.P50, st.P99 = percentile(lags, 0.50), percentile(lags, 0.99)
	return st
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ForceRebuild builds the user's file from scratch now, for an admin: unlike Rebuild it does
// not spend the user's own rebuild budget.
func (s *Service) ForceRebuild(ctx context.Context, userID int64) (File, error) {
	return s.buildOnRequest(ctx, userID, true)
}
