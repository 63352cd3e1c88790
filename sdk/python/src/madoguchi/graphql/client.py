from collections.abc import AsyncIterator
from typing import Any, Optional, Union

from .async_base_client import AsyncBaseClient
from .base_model import UNSET, UnsetType, Upload
from .chat import Chat
from .chat_events import ChatEvents
from .chat_message_events import ChatMessageEvents
from .chat_messages import ChatMessages
from .chats import Chats
from .claim_chat import ClaimChat
from .complete_chat import CompleteChat
from .convert_chat_to_ticket import ConvertChatToTicket
from .create_contact import CreateContact
from .desk_information import DeskInformation
from .enums import TicketStatus
from .input_types import ChatFilterInput, ContactInput, ConvertChatInput
from .link_chat_to_contact import LinkChatToContact
from .login import Login
from .mark_chat_read import MarkChatRead
from .me import Me
from .merge_chat_into_ticket import MergeChatIntoTicket
from .recent_tickets import RecentTickets
from .search_tickets import SearchTickets
from .send_image import SendImage
from .send_message import SendMessage
from .set_ticket_status import SetTicketStatus
from .ticket_classifications import TicketClassifications
from .transfer_chat import TransferChat


def gql(q: str) -> str:
    return q


class GeneratedClient(AsyncBaseClient):
    async def chats(
        self,
        filter_: Union[Optional[ChatFilterInput], UnsetType] = UNSET,
        first: Union[Optional[int], UnsetType] = UNSET,
        after: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> Chats:
        query = gql("""
            query Chats($filter: ChatFilterInput, $first: Int, $after: String) {
              chats(filter: $filter, first: $first, after: $after) {
                edges {
                  cursor
                  node {
                    ...ChatFields
                  }
                }
                pageInfo {
                  hasNextPage
                  endCursor
                }
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {
            "filter": filter_,
            "first": first,
            "after": after,
        }
        response = await self.execute(
            query=query, operation_name="Chats", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Chats.model_validate(data)

    async def chat(self, id: str, **kwargs: Any) -> Chat:
        query = gql("""
            query Chat($id: ID!) {
              chat(id: $id) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="Chat", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Chat.model_validate(data)

    async def chat_messages(
        self,
        id: str,
        from_: Union[Optional[str], UnsetType] = UNSET,
        to: Union[Optional[str], UnsetType] = UNSET,
        first: Union[Optional[int], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> ChatMessages:
        query = gql("""
            query ChatMessages($id: ID!, $from: DateTime, $to: DateTime, $first: Int) {
              chat(id: $id) {
                id
                messages(from: $from, to: $to, first: $first) {
                  ...MessageFields
                }
              }
            }

            fragment MessageFields on Message {
              id
              chatId
              direction
              kind
              text
              senderAgentId
              isPasscode
              deliveryState
              deliveryMethod
              deliveryError
              createdAt
              sentAt
              attachments {
                id
                kind
                status
                contentType
                sizeBytes
                fileName
              }
            }
            """)
        variables: dict[str, object] = {
            "id": id,
            "from": from_,
            "to": to,
            "first": first,
        }
        response = await self.execute(
            query=query, operation_name="ChatMessages", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ChatMessages.model_validate(data)

    async def claim_chat(self, id: str, **kwargs: Any) -> ClaimChat:
        query = gql("""
            mutation ClaimChat($id: ID!) {
              claimChat(id: $id) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="ClaimChat", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return ClaimChat.model_validate(data)

    async def complete_chat(self, id: str, **kwargs: Any) -> CompleteChat:
        query = gql("""
            mutation CompleteChat($id: ID!) {
              completeChat(id: $id) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="CompleteChat", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CompleteChat.model_validate(data)

    async def transfer_chat(
        self, id: str, agent_id: str, **kwargs: Any
    ) -> TransferChat:
        query = gql("""
            mutation TransferChat($id: ID!, $agentId: ID!) {
              transferChat(id: $id, agentId: $agentId) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"id": id, "agentId": agent_id}
        response = await self.execute(
            query=query, operation_name="TransferChat", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return TransferChat.model_validate(data)

    async def mark_chat_read(self, id: str, **kwargs: Any) -> MarkChatRead:
        query = gql("""
            mutation MarkChatRead($id: ID!) {
              markChatRead(id: $id) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"id": id}
        response = await self.execute(
            query=query, operation_name="MarkChatRead", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return MarkChatRead.model_validate(data)

    async def send_message(self, chat_id: str, text: str, **kwargs: Any) -> SendMessage:
        query = gql("""
            mutation SendMessage($chatId: ID!, $text: String!) {
              sendMessage(chatId: $chatId, text: $text) {
                ...MessageFields
              }
            }

            fragment MessageFields on Message {
              id
              chatId
              direction
              kind
              text
              senderAgentId
              isPasscode
              deliveryState
              deliveryMethod
              deliveryError
              createdAt
              sentAt
              attachments {
                id
                kind
                status
                contentType
                sizeBytes
                fileName
              }
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "text": text}
        response = await self.execute(
            query=query, operation_name="SendMessage", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return SendMessage.model_validate(data)

    async def send_image(self, chat_id: str, image: Upload, **kwargs: Any) -> SendImage:
        query = gql("""
            mutation SendImage($chatId: ID!, $image: Upload!) {
              sendImage(chatId: $chatId, image: $image) {
                ...MessageFields
              }
            }

            fragment MessageFields on Message {
              id
              chatId
              direction
              kind
              text
              senderAgentId
              isPasscode
              deliveryState
              deliveryMethod
              deliveryError
              createdAt
              sentAt
              attachments {
                id
                kind
                status
                contentType
                sizeBytes
                fileName
              }
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "image": image}
        response = await self.execute(
            query=query, operation_name="SendImage", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return SendImage.model_validate(data)

    async def link_chat_to_contact(
        self,
        chat_id: str,
        contact_id: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> LinkChatToContact:
        query = gql("""
            mutation LinkChatToContact($chatId: ID!, $contactId: ID) {
              linkChatToContact(chatId: $chatId, contactId: $contactId) {
                ...ChatFields
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "contactId": contact_id}
        response = await self.execute(
            query=query,
            operation_name="LinkChatToContact",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return LinkChatToContact.model_validate(data)

    async def create_contact(self, input: ContactInput, **kwargs: Any) -> CreateContact:
        query = gql("""
            mutation CreateContact($input: ContactInput!) {
              createContact(input: $input) {
                id
                name
                email
              }
            }
            """)
        variables: dict[str, object] = {"input": input}
        response = await self.execute(
            query=query, operation_name="CreateContact", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return CreateContact.model_validate(data)

    async def chat_events(
        self, after: Union[Optional[str], UnsetType] = UNSET, **kwargs: Any
    ) -> AsyncIterator[ChatEvents]:
        query = gql("""
            subscription ChatEvents($after: String) {
              chatEvents(after: $after) {
                cursor
                kind
                chatId
                createdAt
                chat {
                  ...ChatFields
                }
              }
            }

            fragment ChatFields on Chat {
              id
              channelId
              departmentId
              status
              claimedBy
              claimedAt
              lastMessageAt
              lastMessagePreview
              unreadCount
              completedAt
              completionReason
              createdAt
              updatedAt
              endUser {
                id
                customerId
                displayName
                pictureUrl
                contactId
                blocked
                unfollowed
              }
            }
            """)
        variables: dict[str, object] = {"after": after}
        async for data in self.execute_ws(
            query=query, operation_name="ChatEvents", variables=variables, **kwargs
        ):
            yield ChatEvents.model_validate(data)

    async def chat_message_events(
        self,
        chat_id: str,
        after: Union[Optional[str], UnsetType] = UNSET,
        **kwargs: Any,
    ) -> AsyncIterator[ChatMessageEvents]:
        query = gql("""
            subscription ChatMessageEvents($chatId: ID!, $after: String) {
              chatMessages(chatId: $chatId, after: $after) {
                cursor
                kind
                messageId
                createdAt
                message {
                  ...MessageFields
                }
              }
            }

            fragment MessageFields on Message {
              id
              chatId
              direction
              kind
              text
              senderAgentId
              isPasscode
              deliveryState
              deliveryMethod
              deliveryError
              createdAt
              sentAt
              attachments {
                id
                kind
                status
                contentType
                sizeBytes
                fileName
              }
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "after": after}
        async for data in self.execute_ws(
            query=query,
            operation_name="ChatMessageEvents",
            variables=variables,
            **kwargs,
        ):
            yield ChatMessageEvents.model_validate(data)

    async def login(self, email: str, password: str, **kwargs: Any) -> Login:
        query = gql("""
            mutation Login($email: String!, $password: String!) {
              login(input: {email: $email, password: $password}) {
                token
                expiresAt
                agent {
                  id
                  email
                  name
                  role
                }
              }
            }
            """)
        variables: dict[str, object] = {"email": email, "password": password}
        response = await self.execute(
            query=query, operation_name="Login", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Login.model_validate(data)

    async def me(self, **kwargs: Any) -> Me:
        query = gql("""
            query Me {
              me {
                id
                email
                name
                role
                departmentIds
              }
            }
            """)
        variables: dict[str, object] = {}
        response = await self.execute(
            query=query, operation_name="Me", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return Me.model_validate(data)

    async def convert_chat_to_ticket(
        self, chat_id: str, input: ConvertChatInput, **kwargs: Any
    ) -> ConvertChatToTicket:
        query = gql("""
            mutation ConvertChatToTicket($chatId: ID!, $input: ConvertChatInput! = {}) {
              convertChatToTicket(chatId: $chatId, input: $input) {
                ...TicketFields
              }
            }

            fragment TicketFields on Ticket {
              id
              portalName
              number
              subject
              description
              status
              priority
              classification
              departmentId
              email
              chatIds
              createdAt
              updatedAt
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "input": input}
        response = await self.execute(
            query=query,
            operation_name="ConvertChatToTicket",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return ConvertChatToTicket.model_validate(data)

    async def merge_chat_into_ticket(
        self, chat_id: str, ticket_id: str, **kwargs: Any
    ) -> MergeChatIntoTicket:
        query = gql("""
            mutation MergeChatIntoTicket($chatId: ID!, $ticketId: ID!) {
              mergeChatIntoTicket(chatId: $chatId, ticketId: $ticketId) {
                ...TicketFields
              }
            }

            fragment TicketFields on Ticket {
              id
              portalName
              number
              subject
              description
              status
              priority
              classification
              departmentId
              email
              chatIds
              createdAt
              updatedAt
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id, "ticketId": ticket_id}
        response = await self.execute(
            query=query,
            operation_name="MergeChatIntoTicket",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return MergeChatIntoTicket.model_validate(data)

    async def set_ticket_status(
        self, id: str, status: TicketStatus, **kwargs: Any
    ) -> SetTicketStatus:
        query = gql("""
            mutation SetTicketStatus($id: ID!, $status: TicketStatus!) {
              setTicketStatus(id: $id, status: $status) {
                ...TicketFields
              }
            }

            fragment TicketFields on Ticket {
              id
              portalName
              number
              subject
              description
              status
              priority
              classification
              departmentId
              email
              chatIds
              createdAt
              updatedAt
            }
            """)
        variables: dict[str, object] = {"id": id, "status": status}
        response = await self.execute(
            query=query, operation_name="SetTicketStatus", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return SetTicketStatus.model_validate(data)

    async def search_tickets(
        self, text: str, first: int, **kwargs: Any
    ) -> SearchTickets:
        query = gql("""
            query SearchTickets($text: String!, $first: Int! = 20) {
              searchTickets(text: $text, first: $first) {
                ...TicketFields
              }
            }

            fragment TicketFields on Ticket {
              id
              portalName
              number
              subject
              description
              status
              priority
              classification
              departmentId
              email
              chatIds
              createdAt
              updatedAt
            }
            """)
        variables: dict[str, object] = {"text": text, "first": first}
        response = await self.execute(
            query=query, operation_name="SearchTickets", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return SearchTickets.model_validate(data)

    async def recent_tickets(self, chat_id: str, **kwargs: Any) -> RecentTickets:
        query = gql("""
            query RecentTickets($chatId: ID!) {
              recentTickets(chatId: $chatId) {
                ...TicketFields
              }
            }

            fragment TicketFields on Ticket {
              id
              portalName
              number
              subject
              description
              status
              priority
              classification
              departmentId
              email
              chatIds
              createdAt
              updatedAt
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id}
        response = await self.execute(
            query=query, operation_name="RecentTickets", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return RecentTickets.model_validate(data)

    async def desk_information(self, chat_id: str, **kwargs: Any) -> DeskInformation:
        query = gql("""
            query DeskInformation($chatId: ID!) {
              deskInformation(chatId: $chatId) {
                portalName
                contactName
                email
                accountName
                slaName
                contractName
                ownerName
              }
            }
            """)
        variables: dict[str, object] = {"chatId": chat_id}
        response = await self.execute(
            query=query, operation_name="DeskInformation", variables=variables, **kwargs
        )
        data = self.get_data(response)
        return DeskInformation.model_validate(data)

    async def ticket_classifications(self, **kwargs: Any) -> TicketClassifications:
        query = gql("""
            query TicketClassifications {
              ticketClassifications
            }
            """)
        variables: dict[str, object] = {}
        response = await self.execute(
            query=query,
            operation_name="TicketClassifications",
            variables=variables,
            **kwargs,
        )
        data = self.get_data(response)
        return TicketClassifications.model_validate(data)
