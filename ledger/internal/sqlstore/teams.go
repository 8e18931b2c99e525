package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
)

// SaveTeamsConversation stores or refreshes a user's personal-chat reference.
func (db *Store) SaveTeamsConversation(ctx context.Context, c ledger.TeamsConversation) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO teams_conversations(aad_object_id, user_id, conversation_id, service_url, tenant_id, bot_id, bot_name, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(aad_object_id) DO UPDATE SET user_id = excluded.user_id,
			conversation_id = excluded.conversation_id, service_url = excluded.service_url, tenant_id = excluded.tenant_id,
			bot_id = excluded.bot_id, bot_name = excluded.bot_name, updated_at = excluded.updated_at`,
			c.AADObjectID, c.UserID, c.ConversationID, c.ServiceURL, c.TenantID, c.BotID, c.BotName, ms(db.now()))
		if err != nil {
			return fmt.Errorf("save teams conversation: %w", err)
		}
		return nil
	})
}

// TeamsConversationFor returns the stored reference of a user; ok is false when none.
func (db *Store) TeamsConversationFor(ctx context.Context, aadObjectID string) (ledger.TeamsConversation, bool, error) {
	c := ledger.TeamsConversation{AADObjectID: aadObjectID}
	err := db.read.QueryRowContext(ctx, `SELECT user_id, conversation_id, service_url, tenant_id, bot_id, bot_name
		FROM teams_conversations WHERE aad_object_id = ?`, aadObjectID).
		Scan(&c.UserID, &c.ConversationID, &c.ServiceURL, &c.TenantID, &c.BotID, &c.BotName)
	if err == sql.ErrNoRows {
		return c, false, nil
	}
	return c, err == nil, err
}

// DeleteTeamsConversation forgets the stored reference of a personal chat, by its
// conversation id: the user removed the bot, or the connector said the chat is gone
// (403, 404). The next install stores it again. removed is false when none was stored.
func (db *Store) DeleteTeamsConversation(ctx context.Context, conversationID string) (removed bool, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM teams_conversations WHERE conversation_id = ?`, conversationID)
		if err != nil {
			return fmt.Errorf("delete teams conversation: %w", err)
		}
		n, err := res.RowsAffected()
		removed = n > 0
		return err
	})
	return removed, err
}
