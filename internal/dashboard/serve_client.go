package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
)

// DeployServeApplications calls PUT /api/serve/applications/ with a config
// already in JSON form (KubeRay converts serveConfigV2 YAML to JSON and
// sends it as it is, so fields this package does not know survive).
func (c *Client) DeployServeApplications(ctx context.Context, config json.RawMessage) error {
	return c.do(ctx, http.MethodPut, ServeApplicationsPath, config, nil)
}

// GetServeApplications calls GET /api/serve/applications/?api_type=declarative,
// as KubeRay does.
func (c *Client) GetServeApplications(ctx context.Context) (*ServeInstanceDetails, error) {
	var out ServeInstanceDetails
	if err := c.do(ctx, http.MethodGet, ServeApplicationsPath+"?api_type=declarative", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
