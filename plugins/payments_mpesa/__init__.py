"""M-Pesa (Safaricom Daraja): STK push and query, C2B paybill/till payments, callbacks, and a Daraja simulator."""
