// The Conversations page (`#/conversations`, `#/conversations/<id>`): the filtered
// list on the left, the open conversation in the middle and its customer on the right.

import { useWorkbench } from "../context";
import { go, useRoute } from "../route";
import { ChatView } from "../chat/ChatView";
import { ConversationList, filtersOf, queryOf } from "../chat/ConversationList";
import "../chat/chat.css";
import { ChatIcon } from "../chat/icons";

/** The three-column conversation workspace. */
export function Conversations() {
  const route = useRoute();
  const { claims } = useWorkbench();
  const filters = filtersOf(route.query, claims.role);
  return (
    <div className="cv-layout">
      <ConversationList
        filters={filters}
        selectedId={route.id}
        onFilters={(f) => go("conversations", route.id, queryOf(f))}
        onSelect={(id) => go("conversations", id, queryOf(filters))}
      />
      {route.id ? (
        <ChatView id={route.id} />
      ) : (
        <section className="cv-chat cv-empty cv-none">
          <div className="cv-none-art" aria-hidden>
            <ChatIcon size={36} />
          </div>
          <h3>Pick a conversation</h3>
          <p className="muted">Choose one from the list; new ones appear there as customers write.</p>
        </section>
      )}
    </div>
  );
}
