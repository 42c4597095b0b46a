package controller

import (
	"context"
	"net/http"

	"github.com/rayk8s/rayk8s/internal/serve/agent"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// TunnelClient makes control calls through the replica's node agent, the
// same path calls from other nodes take.
type TunnelClient struct {
	HTTP *http.Client
}

// Control implements ReplicaClient. A *wire.Error means the replica
// answered with a failure (check_health raised).
func (t *TunnelClient) Control(ctx context.Context, target handle.Target, kind string, body []byte) ([]string, error) {
	st, err := wire.OpenTunnel(ctx, t.HTTP, agent.ReplicaCallURL(target.AgentAddress, target.ReplicaID))
	if err != nil {
		return nil, err
	}
	res, err := wire.Call(ctx, st, wire.Meta{Kind: kind}, body)
	if err != nil {
		return nil, err
	}
	return res.Accept.Models, nil
}
