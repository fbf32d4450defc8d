package sim

import (
	"strconv"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// Get-Mailbox on both sides: verification needs a mailbox to test with
// when the inventory names none (Test-OAuthConnectivity -Mailbox).
func init() {
	register(OnPrem, "Get-Mailbox", getMailbox)
	register(Online, "Get-Mailbox", getMailbox)
}

func getMailbox(c *Call) ([]exchange.Row, *exchange.Error) {
	limit := -1
	if rs := c.Params.String("ResultSize"); rs != "" && !strings.EqualFold(rs, "Unlimited") {
		n, err := strconv.Atoi(rs)
		if err != nil || n < 1 {
			return nil, invalid("Cannot bind parameter 'ResultSize'. Cannot convert value %q to type Unlimited<int>.", rs)
		}
		limit = n
	}
	id := c.Params.String("Identity")
	var rows []exchange.Row
	for _, m := range c.Org.Mailboxes {
		if id != "" && !strings.EqualFold(m, id) {
			continue
		}
		rows = append(rows, exchange.Row{"Identity": m, "PrimarySmtpAddress": m, "RecipientTypeDetails": "UserMailbox"})
		if limit > 0 && len(rows) >= limit {
			break
		}
	}
	if id != "" && len(rows) == 0 {
		return nil, notFound("Mailbox", id)
	}
	return rows, nil
}
