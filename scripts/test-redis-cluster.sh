#!/usr/bin/env bash
# The second pass of `make test`: the tests that touch Redis (session cache and revocation, rate
# limits, sync locks and state cache, chat stream slots and fan-out) once more with every
# REDIS_URL pointing at the local 3-master Redis Cluster that `bcactl with-services` started.
# Tests that need a Redis of their own to stop or restart (testenv.RedisServer) stay on a
# single node.
set -euo pipefail
: "${BCA_TEST_REDIS_CLUSTER_URL:?run inside bcactl with-services}"
GO=${GO:-go}
export BCA_TEST_REDIS_URL="$BCA_TEST_REDIS_CLUSTER_URL"
echo "Redis Cluster pass: BCA_TEST_REDIS_URL=$BCA_TEST_REDIS_URL"
$GO test -race -count=1 -timeout 15m \
	./internal/account ./internal/app ./internal/moderation ./internal/ratelimit ./internal/redisconn ./internal/syncsvc/... ./internal/worker ./cmd/bcactl
$GO test -race -count=1 -timeout 15m -run '^(TestSignOutAcrossProcesses|TestSessionsListAndRevoke|TestChangePasswordRevokesOtherSessions|TestRefreshRotatesAndDetectsReuse|TestDeactivate|TestRateLimitPerAddress|TestFailedSignInsLockTemporarily|TestReportsAreRateLimited|TestSharePageRateLimit|TestLostCacheNeverRevivesASession|TestLockingAUserClosesItsStreamOnAnotherServer|TestStreamEndsWithItsSession|TestChatStreamAcrossProcesses|TestChatStreamCatchesUpWhatPubSubLost|TestChatStreamLimitAndShutdown|TestChatConcurrentPostsGetGapFreeIndexes|TestSyncFileOverHTTP|TestSyncThroughSQSAndS3)$' \
	./internal/e2e/
