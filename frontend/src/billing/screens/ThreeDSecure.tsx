// The card's 3-D Secure challenge. The sandbox card plugin accepts the response
// "authenticated"; a real processor would show its own page from nextAction instead.
export function ThreeDSecure({ onAnswer }: { onAnswer: (response: string) => void }) {
  return (
    <div className="modal" role="dialog" aria-label="3-D Secure" data-testid="three-d-secure">
      <div className="card">
        <h2>Confirm the payment with your bank</h2>
        <p>Your card asks you to confirm this payment (3-D Secure, sandbox).</p>
        <button className="primary" onClick={() => onAnswer("authenticated")}>
          Complete authentication
        </button>
        <button onClick={() => onAnswer("failed")}>Fail authentication</button>
      </div>
    </div>
  );
}
