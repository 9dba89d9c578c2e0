package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBreakerOutcomeOfFetch(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithDeadline(live, time.Unix(0, 0))
	defer cancel2()

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want breakerOutcome
	}{
		{"a page", live, nil, outcomeSuccess},
		{"a page just as the last waiter left", cancelled, nil, outcomeSuccess},
		{"page past the end", live, newError(codeNotFound, "page not found"), outcomeSuccess},
		{"gave up after retries", live, giveUp(verdict{class: "status", status: 503}, 5), outcomeFailure},
		{"gave up after timeouts", live, giveUp(verdict{class: "timeout", timeout: true}, 5), outcomeFailure},
		{"asked for a long wait", live, &apiError{Code: codeUnavailable, Message: "busy", RetryAfter: "120"}, outcomeFailure},
		{"credentials refused", live, newError(codeUpstream, "the movie catalogue rejected our credentials"), outcomeFailure},
		{"every waiter went away", cancelled, errRequestEnded, outcomeAbandoned},
		{"the call ran out of its budget", expired, errRequestEnded, outcomeFailure},
		{"wrapped not found", live, fmt.Errorf("page 9999: %w", newError(codeNotFound, "page not found")), outcomeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fetchOutcome(tt.ctx, tt.err); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStaleFallback(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"gave up (502)", giveUp(verdict{class: "status", status: 500}, 5), true},
		{"gave up on timeouts (504)", giveUp(verdict{class: "timeout", timeout: true}, 5), true},
		{"asked for a long wait (503)", &apiError{Code: codeUnavailable, Message: "busy", RetryAfter: "120"}, true},
		{"counts as down", catalogueDownError(3 * time.Second), true},
		{"shared call ran out of time", errRequestEnded, true},
		{"page past the end", newError(codeNotFound, "page not found"), false},
		{"bad page parameter", newError(codeInvalid, "page must be a positive integer"), false},
		{"not an apiError", errors.New("boom"), false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := staleFallback(tt.err); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStaleAnswerHeaders(t *testing.T) {
	tests := []struct {
		age  time.Duration
		want string
	}{
		{0, "0"},
		{999 * time.Millisecond, "0"},
		{time.Second, "1"},
		{90*time.Second + 900*time.Millisecond, "90"},
		{24*time.Hour - time.Millisecond, "86399"},
		{-time.Second, "0"},
	}
	for _, tt := range tests {
		age, status := staleAnswerHeaders(tt.age)
		if age != tt.want {
			t.Errorf("age %v: Age %q, want %q", tt.age, age, tt.want)
		}
		if got, want := status, "movies; hit; detail=upstream-error"; got != want {
			t.Errorf("age %v: Cache-Status %q, want %q", tt.age, got, want)
		}
	}
}

func TestBreakerOpenError(t *testing.T) {
	tests := []struct {
		wait       time.Duration
		retryAfter string
		message    string
	}{
		{10 * time.Second, "10", "the movie catalogue is unavailable: try again in 10 seconds"},
		{9*time.Second + time.Millisecond, "10", "the movie catalogue is unavailable: try again in 10 seconds"},
		{300 * time.Millisecond, "1", "the movie catalogue is unavailable: try again in 1 second"},
		{0, "1", "the movie catalogue is unavailable: try again in 1 second"},
	}
	for _, tt := range tests {
		e := catalogueDownError(tt.wait)
		if e.Code != "upstream_unavailable" || e.RetryAfter != tt.retryAfter || e.Message != tt.message {
			t.Errorf("wait %v: got code %q, Retry-After %q, message %q; want upstream_unavailable, %q, %q",
				tt.wait, e.Code, e.RetryAfter, e.Message, tt.retryAfter, tt.message)
		}
	}
}
