package ledger

import "time"

// MessageRef locates a message the bot posted.
type MessageRef struct {
	Channel   string
	MessageID string
	ThreadID  string
}

// SlackStop records that a Slack bot token stopped working for good: the app was
// uninstalled or the token revoked.
type SlackStop struct {
	TeamID    string
	Reason    string
	StoppedAt time.Time
}

// TeamsConversation is where the bot can reach a Teams user in a personal chat.
type TeamsConversation struct {
	AADObjectID    string
	UserID         string
	ConversationID string
	ServiceURL     string
	TenantID       string
	BotID          string
	BotName        string
}
