// The satisfaction survey asked when a chat is resolved: 1 to 5 stars and an optional
// comment (RateConversation), then a thank-you.

import { useState } from "react";
import { StarIcon } from "./icons";
import { visitorError } from "./text";

const MEANINGS = ["Very unhappy", "Unhappy", "Neutral", "Happy", "Very happy"];

/** The survey block; shows the thank-you once rated (now or earlier). */
export function CsatSurvey({ rated, onRate }: { rated: boolean; onRate: (rating: number, comment: string) => Promise<void> }) {
  const [rating, setRating] = useState(0);
  const [hover, setHover] = useState(0);
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  if (rated) {
    return (
      <div className="csat done" data-testid="csat-thanks" role="status">
        Thanks for your feedback
      </div>
    );
  }

  const submit = async () => {
    if (!rating || busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await onRate(rating, comment.trim());
    } catch (err) {
      setError(visitorError(err));
      setBusy(false);
    }
  };

  const shown = hover || rating;
  return (
    <div className="csat" data-testid="csat">
      <div className="stars" role="radiogroup" aria-label="Your rating" onMouseLeave={() => setHover(0)}>
        {[1, 2, 3, 4, 5].map((n) => (
          <button
            key={n}
            type="button"
            role="radio"
            aria-checked={rating === n}
            aria-label={`${n} of 5: ${MEANINGS[n - 1]}`}
            title={MEANINGS[n - 1]}
            data-testid={`csat-${n}`}
            className={n <= shown ? "star on" : "star"}
            onMouseEnter={() => setHover(n)}
            onClick={() => setRating(n)}
          >
            <StarIcon filled={n <= shown} />
          </button>
        ))}
      </div>
      <div className="csat-meaning" aria-hidden="true">
        {shown ? MEANINGS[shown - 1] : "Choose a rating"}
      </div>
      <textarea
        data-testid="csat-comment"
        placeholder="Tell us more (optional)"
        aria-label="Comment (optional)"
        value={comment}
        onChange={(e) => setComment(e.target.value)}
        rows={2}
        maxLength={2000}
      />
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <button type="button" className="primary block" data-testid="csat-submit" disabled={!rating || busy} onClick={submit}>
        {busy ? "Sending…" : "Send feedback"}
      </button>
    </div>
  );
}
