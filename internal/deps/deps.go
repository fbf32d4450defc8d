package deps

import (
	_ "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	_ "github.com/microsoftgraph/msgraph-sdk-go"
	_ "github.com/spf13/cobra"
	_ "go.temporal.io/sdk/client"
	_ "go.uber.org/zap"
	_ "gopkg.in/yaml.v3"
)
